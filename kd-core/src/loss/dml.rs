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
/// # Panics
/// If `peer_logits` is empty, or shapes or targets are inconsistent.
pub fn dml_loss<B: Dim, C: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_logits: Tensor<(B, C), E, D, T>,
    peer_logits: &[Tensor<(B, C), E, D>],
    targets: &[usize],
) -> LossTerms<E, D, T> {
    assert!(
        !peer_logits.is_empty(),
        "dml_loss: `peer_logits` is empty; mutual learning needs at least one peer"
    );
    let (student, tape) = student_logits.split_tape();
    let ce = cross_entropy_loss(student.clone().put_tape(tape), targets);
    let kl = peer_logits
        .iter()
        .map(|peer| kd_loss(student.retaped::<T>(), peer.clone(), 1.0))
        .reduce(|sum, term| sum + term)
        .map(|sum| sum * scalar::<E>(1.0 / peer_logits.len() as f64));
    match kl {
        Some(kl) => LossTerms::new().add("ce", 1.0, ce).add("kl", 1.0, kl),
        None => unreachable!("peer_logits was checked to be non-empty"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::testing::Tolerance;

    #[test]
    fn kl_to_a_peer_is_methods_md_kd_at_t1_and_zero_to_itself() {
        let loss = dml_loss(student_logits(), &[teacher_logits()], &LABELS);
        assert_close!(loss.get("kl").unwrap_or(f64::NAN), 0.1676312889, TABLE);
        assert_close!(loss.get("ce").unwrap_or(f64::NAN), 0.2702599809, TABLE);
        let alone = dml_loss(student_logits(), &[student_logits(), student_logits()], &LABELS);
        assert_close!(alone.get("kl").unwrap_or(f64::NAN), 0.0, Tolerance::F64);
    }

    #[test]
    #[should_panic(expected = "dml_loss: `peer_logits` is empty")]
    fn needs_a_peer() {
        let _ = dml_loss(student_logits(), &[], &LABELS);
    }
}
