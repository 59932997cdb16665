//! The `graft` binary run end to end, one module per area, in one test
//! binary (one link of wasmtime instead of five).

mod cli;
mod common;
mod hostile_packages;
mod operator_faults;
mod postgres;
mod validate;
