//! The runner's integration tests with real compiled plugins, one module
//! per area, in one test binary (one link of wasmtime instead of six).

mod bad_input;
mod contract;
mod engine;
mod hostile;
mod lifecycle;
mod okapi;
mod overlay;
mod planning;
mod platform;
