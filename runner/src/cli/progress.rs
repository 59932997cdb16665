//! Progress shown on stderr while long work runs: a bar per plugin step
//! that reports progress, one over the tenants of a job, a spinner for
//! `validate`. indicatif draws them only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;

/// A progress bar per step that reports progress, drawn on stderr when it is
/// a terminal.
pub fn progress_bars() -> graft::install::ProgressFactory {
    Arc::new(|tenant: &str, module: &str, step: &str| {
        let label = format!("{tenant} {module} {step}");
        let mut bar: Option<ProgressBar> = None;
        Some(Box::new(move |done: u64, total: u64| {
            let bar = bar.get_or_insert_with(|| {
                let style = ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} records ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                ProgressBar::new(total)
                    .with_style(style)
                    .with_message(label.clone())
                    .with_finish(ProgressFinish::AndClear)
            });
            bar.set_length(total);
            bar.set_position(done);
        }) as graft::host::ProgressFn)
    })
}

/// One bar over the tenants of a job.
pub(super) fn tenants_bar(tenants: usize) -> ProgressBar {
    ProgressBar::new(tenants as u64)
        .with_style(
            ProgressStyle::with_template("tenants [{bar:30}] {pos}/{len} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        )
        .with_finish(ProgressFinish::AndClear)
}

/// A spinner with the elapsed time and what runs now; `""` clears it.
pub(super) fn spinner() -> Box<dyn Fn(&str)> {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Box::new(move |what| {
        if what.is_empty() {
            bar.finish_and_clear();
        } else {
            bar.set_message(what.to_string());
        }
    })
}
