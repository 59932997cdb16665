//! Running the `graft` binary from the command-line tests, on SQLite or,
//! when `GRAFT_TEST_POSTGRES` names a server, on a PostgreSQL database of
//! each data directory's own. Shared by the test binaries of `runner/tests`
//! (each uses part of it).

#![allow(dead_code, unused_imports)]

pub use graft::test_support::{database_for, open_tenant};
use std::path::Path;
use std::process::{Command, Output};

/// A graft command, on a data directory (and its database), with nothing
/// taken from the environment.
pub fn command(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_graft"));
    command
        .arg("--data-dir")
        .arg(data)
        .env_remove("GRAFT_MODULES")
        .env_remove("GRAFT_DATA_DIR")
        .env_remove("GRAFT_CONFIG");
    match database_for(data) {
        Some(url) => command.env("GRAFT_DATABASE", url),
        None => command.env_remove("GRAFT_DATABASE"),
    };
    command
}

/// Run graft on a data directory.
pub fn graft(data: &Path, args: &[&str]) -> Output {
    command(data).args(args).output().unwrap()
}

/// The JSON graft printed on stdout.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An error is one line, says what to do, and is no panic.
pub fn assert_clean_error(output: &Output, code: i32, expected: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{text}");
    assert!(text.starts_with("error: "), "{text}");
    assert!(text.contains(expected), "expected {expected:?} in {text}");
    assert!(
        !text.contains("thread 'main'") && !text.contains("stack backtrace"),
        "{text}"
    );
}
