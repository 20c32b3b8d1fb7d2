//! Be Your Own Teacher: shallow classifiers on a network's intermediate layers, each taught by
//! the deepest one; and plain deep supervision (labels only) for comparison.
//!
//! **Paper:** L. Zhang, J. Song, A. Gao, J. Chen, C. Bao, K. Ma, *Be Your Own Teacher: Improve
//! the Performance of Convolutional Neural Networks via Self Distillation*, ICCV 2019,
//! <https://arxiv.org/abs/1905.08094>.
//!
//! ```text
//! L = CE(q_C, y) + Σ_{i<C} [ (1 − α)·CE(q_i, y) + α·T²·KL(p_C ‖ p_i) + λ·‖F_i − F_C‖² ]
//! deep supervision alone: L = Σ_i CE(q_i, y)
//! ```
//!
//! **Convention:** [`crate::loss::byot_loss`] per shallow head, with the deepest head's logits
//! and feature detached (the shallow heads do not pull on the deepest). Terms are named per head:
//! `"deepest.ce"`, then `"head1.ce"`, `"head1.kd"`, `"head1.feature"`, ... up to four shallow
//! heads.

use dfdx::prelude::*;

use crate::error::{Error, LossError};
pub use crate::loss::byot::Head;
use crate::loss::{byot_loss, cross_entropy_loss, ByotConfig, LossTerms};

/// Up to this many shallow heads.
pub const MAX_SHALLOW_HEADS: usize = 4;

const HEAD_TERMS: [[&str; 3]; MAX_SHALLOW_HEADS] = [
    ["head1.ce", "head1.kd", "head1.feature"],
    ["head2.ce", "head2.kd", "head2.feature"],
    ["head3.ce", "head3.kd", "head3.feature"],
    ["head4.ce", "head4.kd", "head4.feature"],
];

/// The BYOT objective of a network's heads, shallowest first and deepest last; with
/// `self_distillation = None`, plain deep supervision (CE on every head).
///
/// # Errors
/// If there are no heads, more than [`MAX_SHALLOW_HEADS`] shallow ones, the configuration is
/// invalid, or a head's loss fails (empty batch, targets out of range).
pub fn deep_supervision_loss<const C: usize, S: Shape>(
    mut heads: Vec<Head<C, S>>,
    targets: &[usize],
    self_distillation: Option<&ByotConfig>,
) -> Result<LossTerms<f32, Cpu, OwnedTape<f32, Cpu>>, LossError> {
    let deepest = heads
        .pop()
        .ok_or(Error::NoItems { argument: "heads" }.in_loss("deep_supervision_loss"))?;
    if heads.len() > MAX_SHALLOW_HEADS {
        let problem = Error::TooManyItems {
            argument: "heads",
            most: MAX_SHALLOW_HEADS + 1,
            got: heads.len() + 1,
        };
        return Err(problem.in_loss("deep_supervision_loss"));
    }
    let (deepest_logits, deepest_feature) = (deepest.logits.retaped::<NoneTape>(), deepest.feature.retaped::<NoneTape>());
    let mut loss = LossTerms::new().add("deepest.ce", 1.0, cross_entropy_loss(deepest.logits, targets)?);
    // The deepest feature's tape is dropped: only the shallow heads' terms reach it, detached.
    drop(deepest.feature);
    for (index, head) in heads.into_iter().enumerate() {
        let names = HEAD_TERMS[index];
        let rename = move |name: &'static str| match name {
            "ce" => names[0],
            "kd" => names[1],
            _ => names[2],
        };
        loss = match self_distillation {
            Some(config) => loss.merge(
                byot_loss(
                    head.logits,
                    deepest_logits.clone(),
                    targets,
                    head.feature,
                    deepest_feature.clone(),
                    config,
                )?,
                rename,
            ),
            None => loss.add(names[0], 1.0, cross_entropy_loss(head.logits, targets)?),
        };
    }
    Ok(loss)
}
