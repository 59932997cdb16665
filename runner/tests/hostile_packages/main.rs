//! Hostile packages against the real `graft` binary, one per class of the
//! sandbox's promise (docs/architecture.md, "Threat model"). Each attack
//! must end in a failed step or a refused package whose one-line reason
//! names the class, with the runner alive (exit code 1 or 2, no signal, no
//! panic), the attacked tenant exactly as before, the runner's peak memory
//! (its own accounting, `wait4`'s maximum resident set) under a stated
//! bound, and the next normal tenant's job fine.

#[path = "../end_to_end/common.rs"]
mod common;

use common::{command, graft, open_tenant};
use graft::storage::Dump;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use tempfile::TempDir;

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    /// The process's peak resident set, in MiB.
    peak_mib: u64,
}

/// Run graft and measure its peak memory with `wait4`: the child's maximum
/// resident set, into which Linux also carries the peak of the process that
/// spawned it (so this test binary is one of its own, and small).
fn run(data: &Path, args: &[&str]) -> Run {
    let mut child = command(data)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        out.read_to_end(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        err.read_to_end(&mut text).unwrap();
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose pid we hold and nobody else waits on.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    let status = std::process::ExitStatus::from_raw(status);
    Run {
        code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        peak_mib: (usage.ru_maxrss as u64) >> 10,
    }
}

/// A modules folder with mod-users (the victim's module) and `packages`
/// from the test packages.
fn modules(packages: &[&str]) -> TempDir {
    let dir = TempDir::new().unwrap();
    let copy = |from: &Path, name: &str| {
        graft_sample_modules::copy_dir(&from.join(name), &dir.path().join(name)).unwrap();
    };
    copy(
        graft_sample_modules::sample_modules_dir(),
        "mod-users-1.0.0",
    );
    for package in packages {
        copy(graft_sample_modules::test_packages_dir(), package);
    }
    dir
}

fn dump(data: &Path, tenant: &str) -> Dump {
    open_tenant(data, tenant).dump().unwrap()
}

/// The runner lived through it: an exit code that says what happened, no
/// signal, no panic, no stack overflow.
fn assert_survived(run: &Run, codes: &[i32]) {
    assert!(
        run.signal.is_none(),
        "killed by signal {:?}: {}",
        run.signal,
        run.stderr
    );
    assert!(
        run.code.is_some_and(|c| codes.contains(&c)),
        "exit {:?}: {}",
        run.code,
        run.stderr
    );
    // Rust's own words when a thread of the runner overflows or panics.
    for fatal in ["panicked", "has overflowed its stack", "RUST_BACKTRACE"] {
        assert!(!run.stderr.contains(fatal), "{}", run.stderr);
    }
}

/// The error graft printed first: one line (the plugin's backtrace frames
/// follow on lines of their own, indented).
fn error_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {}", run.stderr))
}

/// A victim tenant with mod-users and 200 users, the attack installed on it,
/// checked, and then a normal tenant's job on the same data directory.
fn attack(package: &str, extra: &[&str], class: &str, max_mib: u64) -> Run {
    let modules = modules(&[package]);
    attack_in(modules.path(), package, extra, class, max_mib)
}

fn attack_in(modules: &Path, package: &str, extra: &[&str], class: &str, max_mib: u64) -> Run {
    let data = TempDir::new().unwrap();
    let d = data.path();
    let m = modules.to_str().unwrap();
    let installed = install_fresh(
        d,
        m,
        "victim",
        "mod-users-1.0.0",
        &["--load-sample", "--param", "sampleUsers=200"],
    );
    assert_eq!(installed.code, Some(0), "{}", installed.stderr);
    let before = dump(d, "victim");
    let mut args = vec!["--modules", m];
    args.extend(extra);
    args.extend(["install", "--tenant", "victim", package]);
    let attacked = run(d, &args);
    assert_survived(&attacked, &[1, 2]);
    let line = error_line(&attacked);
    assert!(
        line.contains(class),
        "the reason should name {class}: {line}"
    );
    assert!(line.len() < 4096, "one short line: {} bytes", line.len());
    assert_eq!(dump(d, "victim"), before, "{package} changed the tenant");
    eprintln!("{package}: peak RSS {} MiB", attacked.peak_mib);
    assert!(
        attacked.peak_mib <= max_mib,
        "{package}: peak RSS {} MiB, bound {max_mib} MiB",
        attacked.peak_mib
    );
    // The runner and the data directory are fine for the next tenant.
    let next = install_fresh(d, m, "next", "mod-users-1.0.0", &[]);
    assert_eq!(next.code, Some(0), "{}", next.stderr);
    attacked
}

/// Create `tenant` and install `package` on it from the modules folder
/// `m`, with `extra` arguments to the install.
fn install_fresh(d: &Path, m: &str, tenant: &str, package: &str, extra: &[&str]) -> Run {
    assert_eq!(
        graft(d, &["tenant", "create", tenant]).status.code(),
        Some(0)
    );
    let mut args = vec!["--modules", m, "install", "--tenant", tenant, package];
    args.extend(extra);
    run(d, &args)
}

/// What a normal install of mod-users costs here, for the bounds below: a
/// plugin compiled and run, SQLite, wasmtime.
const BASELINE_MIB: u64 = 250;

// --- Confinement ---------------------------------------------------------

/// The package every layout attack starts from: a well-formed one with a
/// `reference-data/items` folder, which `change` then makes hostile (in a
/// copy of the modules folder of its own) before it is attacked.
const LAYOUT: &str = "mod-test-read-symlink-1.0.0";

fn attack_changed(change: impl FnOnce(&Path, &Path), class: &str, code: i32) -> TempDir {
    let modules = modules(&[LAYOUT]);
    change(modules.path(), &modules.path().join(LAYOUT));
    let run = attack_in(modules.path(), LAYOUT, &[], class, BASELINE_MIB);
    assert_eq!(run.code, Some(code), "{}", run.stderr);
    modules
}

/// A package whose data folder is a symbolic link to `/` is refused
/// before anything runs.
#[test]
fn confinement_symlinked_data_folder_is_refused() {
    attack_changed(
        |_, package| {
            std::fs::remove_dir_all(package.join("reference-data")).unwrap();
            std::os::unix::fs::symlink("/", package.join("reference-data")).unwrap();
        },
        "confinement",
        2,
    );
}

/// A plugin path that leaves the package, or a plugin file that is a link
/// to another package's, is refused before anything runs.
#[test]
fn confinement_plugin_path_outside_the_package_is_refused() {
    for outside in [
        "../mod-users-1.0.0/plugin.wasm",
        "/bin/sh",
        "a/../../x.wasm",
    ] {
        attack_changed(
            |_, package| {
                let settings = serde_json::json!({ "plugin": outside }).to_string();
                std::fs::write(package.join("graft.json"), settings).unwrap();
            },
            "confinement",
            2,
        );
    }
    attack_changed(
        |modules, package| {
            std::fs::remove_file(package.join("plugin.wasm")).unwrap();
            let other = modules.join("mod-users-1.0.0/plugin.wasm");
            std::os::unix::fs::symlink(other, package.join("plugin.wasm")).unwrap();
        },
        "confinement",
        2,
    );
}

/// A link inside a data folder to a host file: the folder itself is real,
/// so the package loads, but the plugin cannot follow the link out.
#[test]
fn confinement_link_inside_a_data_folder_leads_nowhere() {
    attack_changed(
        |_, package| {
            let items = package.join("reference-data/items");
            std::os::unix::fs::symlink("/etc/passwd", items.join("passwd")).unwrap();
        },
        "cannot read /reference-data/items/passwd",
        1,
    );
}

/// Modules whose names differ only in case or `-`/`_` never share a table,
/// and one cannot squat the table or index another needs later.
#[test]
fn confinement_table_names_cannot_be_squatted() {
    let data = TempDir::new().unwrap();
    let d = data.path();
    let modules = modules(&["mod-Users-1.0.0", "ix-1.0.0"]);
    let m = modules.path().to_str().unwrap();
    assert_eq!(graft(d, &["tenant", "create", "t"]).status.code(), Some(0));
    for squatter in ["mod-Users-1.0.0", "ix-1.0.0"] {
        let run = run(d, &["--modules", m, "install", "--tenant", "t", squatter]);
        assert_survived(&run, &[0, 1]);
    }
    let users = run(
        d,
        &[
            "--modules",
            m,
            "install",
            "--tenant",
            "t",
            "mod-users-1.0.0",
            "--load-sample",
        ],
    );
    assert_survived(&users, &[0, 1]);
    let dump = dump(d, "t");
    if database_is_postgres(d) {
        // In FOLIO's layout `mod-Users` and `mod-users` are one schema: the
        // second is refused, naming both, and nothing is shared.
        assert_eq!(users.code, Some(1), "{}", users.stderr);
        assert!(
            users.stderr.contains("may not share a FOLIO schema"),
            "{}",
            users.stderr
        );
        assert!(!dump.collections.contains_key("mod-users"));
    } else {
        assert_eq!(users.code, Some(0), "{}", users.stderr);
        let own = &dump.collections["mod-users"]["users"].records;
        assert!(!own.is_empty() && !own.contains_key("squatter"));
        assert_eq!(dump.collections["mod-Users"]["users"].records.len(), 1);
    }
}

fn database_is_postgres(data: &Path) -> bool {
    common::database_for(data).is_some()
}

// --- Resource accounting -------------------------------------------------

/// Several memories, each under the limit, together far over it; a table of
/// ten million elements; more memories than one call may create.
#[test]
fn memory_limit_holds_over_all_memories_and_tables() {
    for package in [
        "mod-test-multi-memory-1.0.0",
        "mod-test-big-table-1.0.0",
        "mod-test-many-memories-1.0.0",
    ] {
        let run = attack(package, &[], "memory", BASELINE_MIB);
        // Too many memories cannot even start: refused before any tenant
        // runs (its `describe` fails), so that one is bad input.
        let code = if package.contains("many") { 2 } else { 1 };
        assert_eq!(run.code, Some(code), "{}", run.stderr);
    }
}

/// 60 collections of 50 records of 128 KiB, set-based updates with 128 KiB
/// values and a 100 MB failure message: the host keeps a bounded log (the
/// guest's own memory, up to its 512 MiB limit, is in the bound).
#[test]
fn host_memory_driven_by_the_guest_is_bounded() {
    let run = attack(
        "mod-test-host-memory-1.0.0",
        &[],
        "failed",
        BASELINE_MIB + 400,
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.len() < 1 << 20,
        "{} bytes of stderr",
        run.stderr.len()
    );
}

/// Paths of 100,000 parts and documents nested 100,000 deep are refused
/// before anything walks them; a plugin that recurses through a 64 MiB
/// stack ends as `stack`, never as a host stack overflow.
#[test]
fn stack_host_never_overflows() {
    let run = attack("mod-test-deep-path-1.0.0", &[], "failed", BASELINE_MIB);
    let line = error_line(&run);
    assert!(
        line.contains("rename: refused") && line.contains("set: refused"),
        "{line}"
    );
    assert!(line.contains("put: refused"), "{line}");
    // 64 MiB of wasm frames: far more than a default thread's stack (2 MiB
    // for a worker); the call's thread is sized for it.
    let run = attack(
        "mod-test-deep-recursion-1.0.0",
        &["--stack-kb", "65536"],
        "stack",
        BASELINE_MIB + 128,
    );
    assert!(
        error_line(&run).contains("overflowed its stack"),
        "{}",
        run.stderr
    );
    // A stack the runner cannot give is bad input.
    let data = TempDir::new().unwrap();
    let out = graft(data.path(), &["--stack-kb", "100000000", "modules", "list"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A plugin that sleeps an hour through WASI ends at its deadline (1 s).
#[test]
fn timeout_holds_inside_wasi_sleeps() {
    let run = attack("mod-test-sleep-1.0.0", &[], "timeout", BASELINE_MIB);
    assert!(
        error_line(&run).contains("deadline of 1.0 s"),
        "{}",
        run.stderr
    );
}

/// A plugin that opens files until it is refused fails as `handles`.
#[test]
fn file_handles_are_bounded_per_call() {
    attack("mod-test-open-files-1.0.0", &[], "handles", BASELINE_MIB);
}

/// Package files of gigabytes (sparse) are refused before they are read,
/// and do not stop the other packages of the folder.
#[test]
fn package_files_are_size_checked() {
    for file in ["ModuleDescriptor.json", "graft.json", "plugin.wasm"] {
        let modules = attack_changed(
            |_, package| {
                let huge = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(package.join(file))
                    .unwrap();
                huge.set_len(5 << 30).unwrap();
            },
            "not a file graft can use",
            2,
        );
        let data = TempDir::new().unwrap();
        let listed = run_list(data.path(), modules.path());
        assert!(listed.contains("mod-users-1.0.0"), "{listed}");
    }
}

fn run_list(data: &Path, modules: &Path) -> String {
    let out = run(
        data,
        &["--modules", modules.to_str().unwrap(), "modules", "list"],
    );
    assert_survived(&out, &[0]);
    assert!(out.peak_mib <= BASELINE_MIB, "{} MiB", out.peak_mib);
    out.stdout
}

// --- What a plugin writes stays readable ---------------------------------

/// Documents the read path could not read are refused at write time, with
/// the record named; everything accepted can be listed and captured.
#[test]
fn documents_written_stay_readable() {
    let data = TempDir::new().unwrap();
    let d = data.path();
    let modules = modules(&["mod-test-bad-documents-1.0.0"]);
    let m = modules.path().to_str().unwrap();
    let out = install_fresh(d, m, "t", "mod-test-bad-documents-1.0.0", &[]);
    assert_survived(&out, &[0]);
    let dump = dump(d, "t");
    let results = &dump.collections["mod-test-bad-documents"]["results"].records;
    for refused in ["lone-surrogate", "huge-number", "deep-nesting"] {
        let result = results[refused]["result"].as_str().unwrap();
        assert!(result.starts_with("refused"), "{refused}: {result}");
        assert!(result.contains(refused), "the record is named: {result}");
    }
    for args in [
        vec![
            "data",
            "list",
            "--tenant",
            "t",
            "--module",
            "mod-test-bad-documents",
            "--collection",
            "items",
        ],
        vec![
            "--json",
            "data",
            "list",
            "--tenant",
            "t",
            "--module",
            "mod-test-bad-documents",
            "--collection",
            "items",
        ],
    ] {
        let listed = run(d, &[&["--modules", m][..], &args].concat());
        assert_survived(&listed, &[0]);
        assert!(!listed.stdout.contains('\x1b'), "{}", listed.stdout);
    }
    let fixture = d.join("fixture.json");
    let captured = run(
        d,
        &[
            "--modules",
            m,
            "fixture",
            "capture",
            "--tenant",
            "t",
            "--module",
            "mod-test-bad-documents",
            "--out",
            fixture.to_str().unwrap(),
        ],
    );
    assert_survived(&captured, &[0]);
}

/// Control characters a plugin sends never reach the terminal as such:
/// no escape sequence, no bell, no line of its own.
#[test]
fn plugin_text_cannot_forge_terminal_output() {
    let run = attack(
        "mod-test-forge-output-1.0.0",
        &["-vv"],
        "failed",
        BASELINE_MIB,
    );
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains('\x1b'), "ESC reached the terminal: {text:?}");
        assert!(!text.contains('\x07'), "BEL reached the terminal: {text:?}");
        assert!(!text.contains('\r'), "CR reached the terminal: {text:?}");
        assert!(
            !text.contains('\u{9b}'),
            "CSI reached the terminal: {text:?}"
        );
        assert!(
            !text.contains('\u{202e}'),
            "an override reached the terminal: {text:?}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("error: forged line")),
            "a forged line: {text:?}"
        );
    }
}

/// A 70,000-character message and module id: tables cut the cell, history
/// and modules list keep working.
#[test]
fn wide_text_never_breaks_a_table() {
    let modules = modules(&["mod-test-wide-text-1.0.0"]);
    let data = TempDir::new().unwrap();
    let d = data.path();
    let m = modules.path().to_str().unwrap();
    let out = install_fresh(d, m, "t", "mod-test-wide-text-1.0.0", &[]);
    assert_survived(&out, &[1]);
    for args in [
        &["history", "--tenant", "t"][..],
        &["status", "--tenant", "t"][..],
    ] {
        let shown = run(d, &[&["--modules", m][..], args].concat());
        assert_survived(&shown, &[0]);
        assert!(
            shown.stdout.lines().all(|l| l.len() < 20_000),
            "a line too wide"
        );
    }
    // A package whose id is 70,000 characters long.
    let long = format!("mod-{}-1.0.0", "w".repeat(70_000));
    let package = modules.path().join("long");
    std::fs::create_dir(&package).unwrap();
    std::fs::write(
        package.join("ModuleDescriptor.json"),
        serde_json::json!({ "id": long, "provides": [], "requires": [] }).to_string(),
    )
    .unwrap();
    std::fs::copy(
        modules.path().join("mod-test-wide-text-1.0.0/plugin.wasm"),
        package.join("plugin.wasm"),
    )
    .unwrap();
    let listed = run_list(d, modules.path());
    assert!(listed.lines().all(|l| l.len() < 20_000), "a line too wide");
}

/// Every failure names its root cause, never only "error while executing".
#[test]
fn trap_reasons_name_the_root_cause() {
    let run = attack("mod-test-exit-zero-1.0.0", &[], "exit(0)", BASELINE_MIB);
    assert_eq!(run.code, Some(1));
    let run = attack("mod-test-shadow-stack-1.0.0", &[], "trap", BASELINE_MIB);
    let line = error_line(&run);
    assert!(
        !line.trim_end().ends_with("wasm backtrace:") && line.contains("wasm trap"),
        "{line}"
    );
}

/// A rename onto the same path or into itself is refused, not a deletion.
#[test]
fn renames_onto_or_into_themselves_are_refused() {
    let run = attack("mod-test-bad-rename-1.0.0", &[], "failed", BASELINE_MIB);
    let line = error_line(&run);
    assert_eq!(
        line.matches("onto itself or into itself").count(),
        2,
        "{line}"
    );
}
