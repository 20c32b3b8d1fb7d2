//! Similarity-preserving knowledge distillation: samples similar for the teacher stay similar
//! for the student.
//!
//! **Paper:** F. Tung, G. Mori, *Similarity-Preserving Knowledge Distillation*, ICCV 2019,
//! <https://arxiv.org/abs/1907.09682>.
//!
//! ```text
//! Q = reshape(f, B × N),   G = Q·Qᵀ  (B × B),   G̃ = G with every row L2-normalised
//! L_sp = ‖G̃_S − G̃_T‖²_F / B²
//! ```
//!
//! **Convention:** the paper's, as RepDistiller `Similarity` ("verified by original author"),
//! mdistiller `SP.py`, torchdistill `SPKDLoss(reduction='batchmean')` and the Zoo's `sp.py`,
//! which agree. Weight γ = 3000 in RepDistiller. Student and teacher features may have any
//! per-sample shape; only the batch sizes must agree.

use dfdx::prelude::*;

use crate::error::{self, in_loss, LossError};
use crate::ops::{flatten_batch, l2_normalize_last};

/// Row-normalised batch similarity `(B, B)` of a flattened feature.
fn normalized_similarity<E: Dtype, D: Device<E>, T: Tape<E, D>>(feat: Tensor<(usize, usize), E, D, T>) -> Tensor<(usize, usize), E, D, T> {
    let gram = feat.retaped::<T>().matmul(feat.permute::<_, Axes2<1, 0>>().contiguous());
    l2_normalize_last(gram)
}

/// The similarity-preserving loss of one layer pair.
///
/// # Arguments
/// - `student_feat`: `(B, ...)`, taped.
/// - `teacher_feat`: `(B, ...)`, untaped.
///
/// # Errors
/// If a feature is empty or the batch sizes differ.
pub fn sp_loss<S1: Shape, S2: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_feat: Tensor<S1, E, D, T>,
    teacher_feat: Tensor<S2, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    error::paired_batch(("student_feat", student_feat.shape()), ("teacher_feat", teacher_feat.shape())).map_err(in_loss("sp_loss"))?;
    let (student, teacher) = (flatten_batch(student_feat), flatten_batch(teacher_feat));
    // mean over B² elements = ‖·‖²_F / B².
    Ok((normalized_similarity(student) - normalized_similarity(teacher)).square().mean())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    #[test]
    fn methods_md_test_vector() {
        assert_close!(value_of(&sp_loss(student_feat(), teacher_feat()).unwrap()), 0.0630317106, TABLE);
    }

    #[test]
    fn invariant_to_feature_scale() {
        let feat = wavy::<Rank4<3, 2, 2, 2>>(2.0, 1.0);
        let loss = sp_loss(feat.leaky_trace(), feat.clone() * 0.01).unwrap();
        assert_close!(value_of(&loss), 0.0, Tolerance::rel_abs(0.0, 1e-12));
    }
}
