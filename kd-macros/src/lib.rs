//! Procedural macros of kd. Use them through `kd-core`, which re-exports them together with the
//! `__private` paths their generated code relies on.
//!
//! The `#[distill]` attribute is built here in serde_derive's shape: `attr` parses the
//! attribute, `ast` is the semantic model, `check` validates and `expand` generates code, with an
//! error context that reports every mistake in one build. No macro is exported yet.
