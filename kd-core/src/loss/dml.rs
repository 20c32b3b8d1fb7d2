//! Deep mutual learning: peers trained together, each also taught by the others.
//!
//! **Paper:** Y. Zhang, T. Xiang, T. M. Hospedales, H. Lu, *Deep Mutual Learning*, CVPR 2018,
//! <https://arxiv.org/abs/1706.00384>.
//!
//! ```text
//! L_k = CE(z_k, y) + (1/(K−1)) Σ_{l≠k} KL(p_l ‖ p_k),     p = softmax(z), T = 1
//! ```
//!
//! **Convention:** the paper's KL (not KD_Lib's MSE), batch-mean, with the other peers' outputs
//! detached, as the Knowledge-Distillation-Zoo `dml.py` (all peers updated from one forward).
//! Here detachment is a type fact: the peers' logits are untaped.

use dfdx::prelude::*;

use crate::error::{Error, LossError};
use crate::loss::{cross_entropy_loss, kd_loss, LossTerms};
use crate::ops::scalar;

/// One peer's DML objective: `"ce"` (weight 1) and `"kl"`, the mean KL from the other peers
/// (weight 1).
///
/// # Arguments
/// - `student_logits`: this peer's logits `(B, C)`, taped.
/// - `peer_logits`: the other peers' logits, untaped (at least one).
/// - `targets`: the class of each sample.
///
/// # Errors
/// If `peer_logits` is empty, the logits are empty, or shapes or targets are inconsistent.
pub fn dml_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    peer_logits: &[Tensor<(B, C), E, D>],
    targets: &[usize],
) -> Result<LossTerms<E, D, T>, LossError> {
    let (student, tape) = student_logits.split_tape();
    let ce = cross_entropy_loss(student.clone().put_tape(tape), targets)?;
    let mut kl = None;
    for peer in peer_logits {
        let term = kd_loss(student.retaped::<T>(), peer.clone(), 1.0)?;
        kl = Some(match kl {
            None => term,
            Some(sum) => sum + term,
        });
    }
    let kl = kl.ok_or(Error::NoItems { argument: "peer_logits" }.in_loss("dml_loss"))?;
    Ok(LossTerms::new()
        .add("ce", 1.0, ce)
        .add("kl", 1.0, kl * scalar::<E>(1.0 / peer_logits.len() as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::testing::Tolerance;

    #[test]
    fn kl_to_a_peer_is_methods_md_kd_at_t1_and_zero_to_itself() {
        let loss = dml_loss(student_logits(), &[teacher_logits()], &LABELS).unwrap();
        assert_close!(loss.get("kl").unwrap_or(f64::NAN), 0.1676312889, TABLE);
        assert_close!(loss.get("ce").unwrap_or(f64::NAN), 0.2702599809, TABLE);
        let alone = dml_loss(student_logits(), &[student_logits(), student_logits()], &LABELS).unwrap();
        assert_close!(alone.get("kl").unwrap_or(f64::NAN), 0.0, Tolerance::F64);
    }

    #[test]
    fn needs_a_peer() {
        let error = dml_loss(student_logits(), &[], &LABELS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("dml_loss: `peer_logits` is empty"), "{error}");
    }
}
