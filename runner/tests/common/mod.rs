//! Running the `graft` binary from the command-line tests.

use std::path::Path;
use std::process::{Command, Output};

/// Run graft on a data directory, with nothing taken from the environment.
pub fn graft(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graft"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("GRAFT_MODULES")
        .env_remove("GRAFT_DATA_DIR")
        .output()
        .unwrap()
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
