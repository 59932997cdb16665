//! Benchmark of the reference-data overlay on 100,000 synthetic records,
//! against inserting the same records without merge, in the same run.
//!
//! `cargo bench --bench overlay` (add `-- --quick` for 10,000 records).
//! Writes docs/overlay-benchmark.md.

use graft::overlay::{load, CollectionOverlay, Kind};
use graft::storage::{SqliteStore, TenantStore};
use std::time::{Duration, Instant};

const RUNS: usize = 3;

fn record(n: usize, release: u32) -> (String, String) {
    let id = format!("00000000-0000-4000-8000-{n:012}");
    // Release 2 changes every tenth record's description.
    let description = if release > 1 && n % 10 == 0 {
        "revised by the vendor"
    } else {
        "as shipped"
    };
    let doc = serde_json::json!({
        "id": id, "name": format!("Type {n}"), "code": format!("t{n}"),
        "source": "folio", "description": description,
    });
    (id, doc.to_string())
}

fn store(dir: &std::path::Path, name: &str) -> SqliteStore {
    let mut db = SqliteStore::create(&dir.join(format!("{name}.sqlite")), "bench").unwrap();
    db.create_collection("mod-bench", "types").unwrap();
    db
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let count = if quick { 10_000 } else { 100_000 };
    let v1: Vec<_> = (0..count).map(|n| record(n, 1)).collect();
    let v2: Vec<_> = (0..count).map(|n| record(n, 2)).collect();
    let (mut plain, mut first, mut merge) = (Vec::new(), Vec::new(), Vec::new());
    let mut report = None;
    for run in 0..RUNS {
        let dir = tempfile::TempDir::new().unwrap();
        // Baseline: the same records, inserted without any merge.
        let mut db = store(dir.path(), &format!("plain{run}"));
        let started = Instant::now();
        db.begin().unwrap();
        for (id, doc) in &v1 {
            db.put("mod-bench", "types", id, doc).unwrap();
        }
        db.commit().unwrap();
        plain.push(started.elapsed());

        // The overlay's first load: inserts plus the vendor's base copies.
        let mut db = store(dir.path(), &format!("overlay{run}"));
        let started = Instant::now();
        db.begin().unwrap();
        let mut overlay = CollectionOverlay::new("types", Kind::Reference);
        load(&mut db, "mod-bench", "1.0.0", &mut overlay, &v1).unwrap();
        db.commit().unwrap();
        first.push(started.elapsed());

        // The tenant edits every seventh record's name (a different field
        // from the vendor's), then release 2 is merged.
        db.begin().unwrap();
        for n in (0..count).step_by(7) {
            let (id, doc) = record(n, 1);
            let mut doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
            doc["name"] = serde_json::json!(format!("Our type {n}"));
            db.put("mod-bench", "types", &id, &doc.to_string()).unwrap();
        }
        db.commit().unwrap();
        let started = Instant::now();
        db.begin().unwrap();
        let mut overlay = CollectionOverlay::new("types", Kind::Reference);
        load(&mut db, "mod-bench", "2.0.0", &mut overlay, &v2).unwrap();
        db.commit().unwrap();
        merge.push(started.elapsed());
        report = Some(overlay.counts);
    }
    let (plain, first, merge) = (median(plain), median(first), median(merge));
    let counts = report.unwrap();
    let ratio = |d: Duration| d.as_secs_f64() / plain.as_secs_f64();
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let text = format!(
        "# Reference-data overlay benchmark\n\n\
         `cargo bench --bench overlay{quick}` on {machine} ({cores} cores), SQLite, one transaction per load; \
         medians of {RUNS} runs, each on a fresh database.\n\n\
         {count} synthetic reference records (five fields each; `name` and `code` unique in the data, no index). \
         Release 2 changes the description of every tenth record; the tenant renamed every seventh \
         before it, so 1 in 70 records is both (merged field by field).\n\n\
         | what | time | records/s | vs baseline |\n| --- | --- | --- | --- |\n\
         | baseline: insert the records, no overlay | {:.2} s | {:.0} | 1.00x |\n\
         | overlay, first load (insert + vendor base) | {:.2} s | {:.0} | {:.2}x |\n\
         | overlay, three-way merge of release 2 | {:.2} s | {:.0} | {:.2}x |\n\n\
         The merge's report: {} applied, {} merged, {} tenant edits kept, {} conflicts, {} unchanged.\n\n\
         Target (issue 6, B5): 100,000 records merged in at most 2 s.\n",
        plain.as_secs_f64(), count as f64 / plain.as_secs_f64(),
        first.as_secs_f64(), count as f64 / first.as_secs_f64(), ratio(first),
        merge.as_secs_f64(), count as f64 / merge.as_secs_f64(), ratio(merge),
        counts.applied, counts.merged, counts.kept, counts.conflicts, counts.unchanged,
        quick = if quick { " -- --quick" } else { "" },
    );
    print!("{text}");
    let docs =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/overlay-benchmark.md");
    std::fs::write(&docs, text).unwrap();
    eprintln!("written to {}", docs.display());
}
