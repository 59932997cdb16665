//! The plugin's monotonic clock, with every wait cut at the call's deadline.
//!
//! Epoch interruption stops wasm code, not the host: a guest that sleeps
//! (`subscribe-duration` then `poll`) waits inside wasmtime-wasi, where no
//! epoch reaches it, so a sleep of an hour would outlive a deadline of one
//! second. The runner's own `monotonic-clock` shadows wasmtime-wasi's: it
//! reads the same clock and hands every wait to wasmtime-wasi cut to what
//! is left of the call, so the guest wakes at the deadline and the next
//! epoch check ends the call.

use super::state::StepState;
use std::time::{Duration, Instant};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::DynPollable;

/// Put the clamped clock in place of wasmtime-wasi's in `linker` (which
/// must already have WASI linked).
pub fn add_to_linker(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    monotonic_clock::add_to_linker::<StepState, Clamped>(linker, |state| {
        let deadline = state.deadline;
        ClampedClock {
            deadline,
            inner: state.clocks(),
        }
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

struct Clamped;

impl HasData for Clamped {
    type Data<'a> = ClampedClock<'a>;
}

struct ClampedClock<'a> {
    deadline: Option<Instant>,
    inner: WasiClocksCtxView<'a>,
}

impl ClampedClock<'_> {
    /// `wanted`, or what is left of the call if that is less.
    fn clamp(&self, wanted: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => wanted.min(deadline.saturating_duration_since(Instant::now())),
            None => wanted,
        }
    }
}

impl monotonic_clock::Host for ClampedClock<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.inner)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.inner)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.inner)?;
        let wait = self.clamp(Duration::from_nanos(when.saturating_sub(now)));
        monotonic_clock::Host::subscribe_duration(&mut self.inner, wait.as_nanos() as u64)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = self.clamp(Duration::from_nanos(duration));
        monotonic_clock::Host::subscribe_duration(&mut self.inner, wait.as_nanos() as u64)
    }
}
