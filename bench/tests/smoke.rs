//! Every benchmark, tiny, so that it keeps working. No timing assertions:
//! tests check behaviour.

use graft_bench::{
    b1_b6, b1_pg, b2, b3, b4, b4_pg, b5, b7, b8, b8_leg, b9, b9_pg, report, Setup, Sizes,
};

#[test]
fn every_benchmark_runs() {
    let setup = Setup::new().unwrap();
    let sizes = Sizes::smoke();
    let (b1, b6) = b1_b6(&setup, &sizes, &|_| None).unwrap();
    let benches = vec![
        b1,
        b2(&setup, &sizes).unwrap(),
        b3(&setup, &sizes).unwrap(),
        b4(&setup, &sizes).unwrap(),
        b5(&setup, &sizes).unwrap(),
        b6,
        // The Rust, Python and JavaScript plugins (built with the pinned
        // toolchains, installed on first use).
        b7(&setup, &sizes).unwrap(),
        // B8's legs run in this process here (the bench binary runs each in
        // a fresh one, to measure it alone).
        b8(&sizes, &|tenants, stream| {
            b8_leg(&setup, tenants, stream).ok()
        })
        .unwrap(),
        // Contract 0.2 against SQL and 0.1; the three legs' data compared.
        b9(&setup, &sizes, &|_| None).unwrap(),
    ];
    let text = report(&benches, "smoke", &sizes);
    for id in ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9"] {
        assert!(text.contains(&format!("## {id}:")), "{id} missing");
    }
    assert!(benches
        .iter()
        .all(|b| !b.rows.is_empty() || b.notes.iter().any(|n| n.contains("MiB"))));
}

/// The PostgreSQL benchmarks, tiny, on the server the tests run on (CI's
/// PostgreSQL pass); on SQLite alone there is no server to run them on.
#[test]
fn every_postgres_benchmark_runs() {
    let Some(server) = graft::test_support::postgres_server() else {
        eprintln!("GRAFT_TEST_POSTGRES not set: the -PG benchmarks need a server");
        return;
    };
    let setup = Setup::new().unwrap();
    let sizes = Sizes::smoke();
    let benches = vec![
        b1_pg(&setup, &server, sizes.users, 1).unwrap(),
        b4_pg(&setup, &server, sizes.tenants, 1).unwrap(),
        // The three legs' data compared, as on SQLite.
        b9_pg(&setup, &server, sizes.users, 1).unwrap(),
    ];
    let text = report(&benches, "smoke", &sizes);
    for id in ["B1-PG", "B4-PG", "B9-PG"] {
        assert!(text.contains(&format!("## {id}:")), "{id} missing");
    }
    assert!(benches.iter().all(|b| !b.rows.is_empty()));
}
