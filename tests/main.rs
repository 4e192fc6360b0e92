//! The Rust integration tests in one binary: one link of burn, wgpu and the tokenizer instead of
//! one per file, and one process whose wgpu tests share a device. Each former test file is a
//! module here; one file's tests alone: `cargo test --profile ci --test it -- parity::` (`--release`
//! works too, in a build of its own).
//! tests/device_limits.rs is a binary of its own (it needs wgpu's default device with lowered
//! limits, which only a fresh process can make).

mod attention_paths;
mod builtin;
mod builtin_model;
mod common;
mod fuzz_short;
mod geometry;
mod loader;
mod parity;
mod pruning_methods;
mod pruning_parity;
mod session;
mod smolvlm_files;
