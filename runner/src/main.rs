//! `graft`: run module upgrades tenant by tenant.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Output piped into a reader that stops early (`graft ... | head`) ends
    // graft as it ends other Unix tools, by SIGPIPE, instead of a panic in
    // the middle of printing (Rust ignores SIGPIPE, so a write would fail and
    // `println!` panic). A job cut short this way is rolled back, as after
    // any kill.
    // SAFETY: set before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    // The command runs on a thread whose stack holds a plugin call (the
    // main thread's size is the system's, unknown): calls then run in place.
    let stack = args.limits.call_stack_size();
    let command = std::thread::Builder::new()
        .name("graft".into())
        .stack_size(stack)
        .spawn(graft::host::on_call_stack(stack, || cli::run(args)));
    let result = match command {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(e) => Err(anyhow::anyhow!("cannot start graft's main thread: {e}")),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", cli::print::one_line(&error));
            ExitCode::from(cli::EXIT_BAD_INPUT)
        }
    }
}
