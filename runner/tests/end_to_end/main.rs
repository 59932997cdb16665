//! The `graft` binary run end to end, one module per area, in one test
//! binary (one link of wasmtime instead of four). The hostile packages
//! have a binary of their own (`hostile_packages/`): they measure the
//! child's peak memory with `wait4`, and Linux counts in it the peak of the
//! process that spawned it, which must therefore stay small.

mod cli;
mod common;
mod languages;
mod operator_faults;
mod packaging;
mod postgres;
mod validate;
