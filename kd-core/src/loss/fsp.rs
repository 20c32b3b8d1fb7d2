//! FSP matrices: transfer the "flow of solution procedure" between two layers.
//!
//! **Paper:** J. Yim, D. Joo, J. Bae, J. Kim, *A Gift from Knowledge Distillation: Fast
//! Optimization, Network Minimization and Transfer Learning*, CVPR 2017.
//!
//! For two feature maps of one network with equal spatial size:
//!
//! ```text
//! G[b, i, j] = (1/(h·w)) Σ_{s,t} F¹[b, i, s, t] · F²[b, j, s, t]          (C₁ × C₂ per sample)
//! paper:        L = (1/B) Σ_b ‖G_T[b] − G_S[b]‖²_F                   (squared Frobenius)
//! RepDistiller: L = mean over B·C₁·C₂ of (G_S − G_T)²
//! ```
//!
//! **Convention:** the paper's (default, [`FspConvention::Paper`]); RepDistiller's `FSP` is
//! the same divided by `C₁·C₂` ([`FspConvention::RepDistiller`]). torchdistill's non-squared
//! column norm is not offered. Student and teacher must have the same channel counts for each
//! pair (the paper pairs same-width stages); within a pair, a larger layer is pooled to the
//! smaller one's size.

use dfdx::prelude::*;

use crate::error::{self, in_loss, LossError};
use crate::ops::scalar;

/// How the difference of FSP matrices is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FspConvention {
    /// Squared Frobenius norm per sample, mean over the batch (the paper).
    #[default]
    Paper,
    /// Mean over every element `B·C₁·C₂` (RepDistiller `distiller_zoo/FSP.py`).
    RepDistiller,
}

/// The FSP (Gram) matrix of two feature maps: `(B, C₁, H, W)`, `(B, C₂, H, W)` -> `(B, C₁, C₂)`.
///
/// When the two layers differ in size, the larger map is adaptive-average-pooled to the smaller
/// one first (RepDistiller `FSP.compute_fsp`).
///
/// # Errors
/// If a map is empty, the batch sizes differ, or one map is taller and the other wider.
#[allow(clippy::type_complexity)]
pub fn fsp_matrix<B, C1, C2, H1, W1, H2, W2, E, D, T, R>(
    first: Tensor<(B, C1, H1, W1), E, D, T>,
    second: Tensor<(B, C2, H2, W2), E, D, R>,
) -> Result<Tensor<(B, C1, C2), E, D, T>, LossError>
where
    B: Dim,
    C1: Dim,
    C2: Dim,
    H1: Dim,
    W1: Dim,
    H2: Dim,
    W2: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D> + Merge<R>,
    R: Tape<E, D>,
{
    let (named_first, named_second) = (("first", first.shape()), ("second", second.shape()));
    error::paired_batch(named_first, named_second)
        .and_then(|_| error::poolable(named_first, named_second))
        .map_err(in_loss("fsp_matrix"))?;
    let (first, second) = crate::spatial::pool_to_common_size(first, second);
    let (b1, c1, h1, w1) = *first.shape();
    let c2 = second.shape().1;
    let positions = h1 * w1;
    let first = first.reshape_like(&(b1, c1, positions));
    let second = second.reshape_like(&(b1, c2, positions)).permute::<_, Axes3<0, 2, 1>>();
    Ok(first.matmul(second) * scalar::<E>(1.0 / positions as f64))
}

/// The FSP loss of one pair of layers, from the student's and the teacher's FSP matrices.
///
/// # Arguments
/// - `student_fsp`: `fsp_matrix` of two student layers, taped.
/// - `teacher_fsp`: `fsp_matrix` of the corresponding teacher layers, untaped.
/// - `convention`: see [`FspConvention`].
///
/// # Errors
/// If the matrices are empty or their shapes differ.
pub fn fsp_loss<B: Dim, C1: Dim, C2: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_fsp: Tensor<(B, C1, C2), E, D, T>,
    teacher_fsp: Tensor<(B, C1, C2), E, D>,
    convention: FspConvention,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    error::non_empty("student_fsp", student_fsp.shape())
        .and_then(|_| error::same_shape(("student_fsp", student_fsp.shape()), ("teacher_fsp", teacher_fsp.shape())))
        .map_err(in_loss("fsp_loss"))?;
    let (_, c1, c2) = *student_fsp.shape();
    let mean_sq = (student_fsp - teacher_fsp).square().mean();
    Ok(match convention {
        FspConvention::Paper => mean_sq * scalar::<E>((c1.size() * c2.size()) as f64),
        FspConvention::RepDistiller => mean_sq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;

    // methods.md pairs (F¹, F²) = (f_s, f_t) for the "student" and (f_t, f_s) for the "teacher".
    #[test]
    fn methods_md_test_vectors() {
        let student = || fsp_matrix(student_feat(), teacher_feat()).unwrap();
        let teacher = || fsp_matrix(teacher_feat(), student_feat()).unwrap();
        assert_close!(
            value_of(&fsp_loss(student(), teacher(), FspConvention::Paper).unwrap()),
            1.328125,
            TABLE
        );
        assert_close!(
            value_of(&fsp_loss(student(), teacher(), FspConvention::RepDistiller).unwrap()),
            0.33203125,
            TABLE
        );
    }

    #[test]
    fn a_larger_layer_is_pooled_to_the_smaller_ones_size() {
        let first = crate::loss::test_vectors::wavy::<Rank4<2, 3, 4, 4>>(1.0, 1.0);
        let second = crate::loss::test_vectors::wavy::<Rank4<2, 2, 2, 2>>(2.0, 1.0);
        let pooled = crate::spatial::adaptive_avg_pool2d(first.clone(), (2, 2));
        crate::assert_close!(
            fsp_matrix(first, second.clone()).unwrap(),
            fsp_matrix(pooled, second).unwrap(),
            crate::testing::Tolerance::F64
        );
    }
}
