//! Fuzz harness bodies for wasp's untrusted inputs, as plain functions over
//! bytes, so that two drivers share them: `cargo test -p wasp-fuzz-harness`
//! runs a bounded, deterministic set of cases of each on stable (seeds plus
//! pseudo-random mutations, [`corpus`]), and `fuzz/` (cargo-fuzz, nightly,
//! run by `scripts/fuzz`) runs the same functions under libFuzzer.
//!
//! Each harness asserts the properties that matter for its input, not only
//! that nothing crashed: a decode that succeeds re-encodes to a fixed
//! point, a refusal names what was wrong, a limit is enforced at its value.
//!
//! # Layout
//! - [`wire`]: the frame codec and every wire message, and the packed
//!   items and results inside them.
//! - [`json`]: JSON to `Value` against arbitrary WIT types.
//! - [`convert`]: `Value` to wasmtime's `Val` for a call's arguments.
//! - [`component`]: mutated real components through the header check and
//!   the compiler.
//! - [`shapes`]: bounded WIT types, signatures and values built from input.
//! - [`corpus`]: the seeded generator and mutator the tests use.

#![warn(missing_docs)]

pub mod component;
pub mod convert;
pub mod corpus;
pub mod json;
pub mod shapes;
pub mod wire;
