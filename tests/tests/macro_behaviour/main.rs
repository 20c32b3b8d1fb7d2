//! The `#[distill]` and `#[model]` macros' expansions at work, in one test binary (each module
//! was its own binary, linked and compiled against dfdx again): equivalence with a hand-written
//! step, the MLP, CNN, divergence and several-teacher pairings, and behaviour tests that train.
//! The UI cases (`ui.rs`) and the hygiene test (`hygiene.rs`, which must be its own crate
//! root) stay binaries of their own.

mod common;
mod distill_behaviour;
mod macro_cnn;
mod macro_divergences;
mod macro_equivalence;
mod macro_mlp;
mod macro_teachers;
mod task;
