//! Relational knowledge distillation: transfer distances and angles between samples.
//!
//! **Paper:** W. Park, D. Kim, Y. Lu, M. Cho, *Relational Knowledge Distillation*, CVPR 2019,
//! <https://arxiv.org/abs/1904.05068>.
//!
//! On embeddings `e ∈ R^{B×D}` (any `(B, ...)` tensor is flattened per sample):
//!
//! ```text
//! d_ij = ‖e_i − e_j‖₂  (d_ii = 0),   μ = mean of d_ij over i ≠ j
//! L_dist  = mean over all B² pairs of huber(d_ij^S/μ_S − d_ij^T/μ_T)
//! u_ij = (e_j − e_i) / ‖e_j − e_i‖₂  (0 when i = j),   a_ijk = ⟨u_ij, u_ik⟩
//! L_angle = mean over all B³ triples of huber(a_ijk^S − a_ijk^T)
//! huber(x) = ½x² if |x| < 1 else |x| − ½                        (SmoothL1, β = 1)
//! ```
//!
//! **Convention:** the official `lenscloth/RKD` (`metric/loss.py`), which RepDistiller,
//! mdistiller and torchdistill copy: squared distances clamped at `1e-12` before the square
//! root, the diagonal zeroed, means over all `B²` / `B³` entries including the degenerate ones,
//! unit vectors by `F.normalize` (`max(‖·‖, 1e-12)`). Weights 25 / 50 in RepDistiller
//! ([`RkdConfig`]), 1 / 2 in the metric-learning recipes. The student and teacher embeddings
//! may have different widths.

use dfdx::prelude::*;

use crate::error::{self, in_loss, Error, LossError};
use crate::ops::{flatten_batch, l2_normalize_last, scalar};

/// Weights of the two RKD terms; RepDistiller's defaults (25, 50).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RkdConfig {
    /// Weight of the distance term.
    pub distance_weight: f64,
    /// Weight of the angle term.
    pub angle_weight: f64,
}

impl Default for RkdConfig {
    fn default() -> Self {
        Self {
            distance_weight: crate::defaults::RKD_DISTANCE,
            angle_weight: crate::defaults::RKD_ANGLE,
        }
    }
}

/// Pairwise Euclidean distances `(B, B)` divided by their mean over `i ≠ j`.
fn normalized_distances<E: Dtype, D: Device<E>, T: Tape<E, D>>(embed: Tensor<(usize, usize), E, D, T>) -> Tensor<(usize, usize), E, D, T> {
    let (batch, _) = *embed.shape();
    let square_norms = embed.retaped::<T>().square().sum::<_, Axis<1>>();
    let gram = embed.retaped::<T>().matmul(embed.permute::<_, Axes2<1, 0>>().contiguous());
    let shape = *gram.shape();
    let square_dist = gram * scalar::<E>(-2.0)
        + square_norms.retaped::<T>().broadcast_like::<_, Axis<1>>(&shape)
        + square_norms.broadcast_like::<_, Axis<0>>(&shape);
    let dev = square_dist.device().clone();
    let off_diagonal: Vec<E> = (0..batch * batch)
        .map(|k| if k / batch == k % batch { scalar(0.0) } else { scalar(1.0) })
        .collect();
    let off_diagonal = dev.tensor_from_vec(off_diagonal, shape);
    let dist = square_dist.clamp(1e-12, f64::INFINITY).sqrt() * off_diagonal;
    // Every off-diagonal distance is ≥ 1e-6 > 0 after the clamp, so "mean over positive
    // entries" is the mean over the B(B−1) off-diagonal ones.
    let mean = dist.retaped::<T>().sum::<Rank0, _>() * scalar::<E>(1.0 / (batch * (batch - 1)) as f64);
    dist / mean.broadcast_like(&shape)
}

/// The RKD distance loss.
///
/// # Arguments
/// - `student_embed`: `(B, ...)`, taped.
/// - `teacher_embed`: `(B, ...)`, untaped; may be wider or narrower than the student's.
///
/// # Errors
/// If an embedding is empty, the batch sizes differ or `B < 2` (no distance to normalise by).
pub fn rkd_distance_loss<S1: Shape, S2: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_embed: Tensor<S1, E, D, T>,
    teacher_embed: Tensor<S2, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    let check = || match error::paired_batch(("student_embed", student_embed.shape()), ("teacher_embed", teacher_embed.shape()))? {
        got @ 0..=1 => Err(Error::TooFewSamples {
            argument: "student_embed",
            needed: 2,
            got,
        }),
        _ => Ok(()),
    };
    check().map_err(in_loss("rkd_distance_loss"))?;
    let (student, teacher) = (flatten_batch(student_embed), flatten_batch(teacher_embed));
    Ok(normalized_distances(student).huber_error(normalized_distances(teacher), 1.0).mean())
}

/// Unit difference vectors `u_ij = normalize(e_j − e_i)`: `(B, B, D)`.
fn unit_differences<E: Dtype, D: Device<E>, T: Tape<E, D>>(
    embed: Tensor<(usize, usize), E, D, T>,
) -> Tensor<(usize, usize, usize), E, D, T> {
    let (batch, width) = *embed.shape();
    let shape = (batch, batch, width);
    let e_j = embed.retaped::<T>().broadcast_like::<_, Axis<0>>(&shape);
    // Both operands view `embed`; the copy gives dfdx's subtraction two distinct tensors.
    let e_i = embed.broadcast_like::<_, Axis<1>>(&shape).contiguous();
    l2_normalize_last(e_j - e_i)
}

/// Cosines of the angle at vertex `i` between `j` and `k`: `(B, B, B)`.
fn angles<E: Dtype, D: Device<E>, T: Tape<E, D>>(embed: Tensor<(usize, usize), E, D, T>) -> Tensor<(usize, usize, usize), E, D, T> {
    let units = unit_differences(embed);
    units.retaped::<T>().matmul(units.permute::<_, Axes3<0, 2, 1>>().contiguous())
}

/// The RKD angle loss.
///
/// # Arguments
/// - `student_embed`: `(B, ...)`, taped.
/// - `teacher_embed`: `(B, ...)`, untaped.
///
/// # Errors
/// If an embedding is empty or the batch sizes differ.
pub fn rkd_angle_loss<S1: Shape, S2: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    student_embed: Tensor<S1, E, D, T>,
    teacher_embed: Tensor<S2, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, LossError> {
    error::paired_batch(("student_embed", student_embed.shape()), ("teacher_embed", teacher_embed.shape()))
        .map_err(in_loss("rkd_angle_loss"))?;
    let (student, teacher) = (flatten_batch(student_embed), flatten_batch(teacher_embed));
    Ok(angles(student).huber_error(angles(teacher), 1.0).mean())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::loss::LossTerms;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    #[test]
    fn methods_md_test_vectors() {
        let distance = rkd_distance_loss(student_embed(), teacher_embed()).unwrap();
        let angle = rkd_angle_loss(student_embed(), teacher_embed()).unwrap();
        assert_close!(value_of(&distance), 0.0056644223, TABLE);
        assert_close!(value_of(&angle), 0.0136656323, TABLE);
        let config = RkdConfig::default();
        let total = LossTerms::new()
            .add("rkd_distance", config.distance_weight, distance)
            .add("rkd_angle", config.angle_weight, angle);
        assert_close!(total.value(), 0.8248921748, TABLE);
    }

    #[test]
    fn both_terms_are_invariant_to_embedding_scale_and_translation() {
        let embed = wavy::<Rank2<5, 3>>(4.0, 2.0);
        let moved = embed.clone() * 3.5 + 1.25;
        assert_close!(
            value_of(&rkd_distance_loss(embed.leaky_trace(), moved.clone()).unwrap()),
            0.0,
            Tolerance::rel_abs(0.0, 1e-12)
        );
        assert_close!(
            value_of(&rkd_angle_loss(embed.leaky_trace(), moved).unwrap()),
            0.0,
            Tolerance::rel_abs(0.0, 1e-12)
        );
    }

    #[test]
    fn a_single_sample_has_no_distances() {
        let dev = Cpu::default();
        let one: Tensor<Rank2<1, 3>, f64, _> = dev.ones();
        let error = rkd_distance_loss(one.clone(), one).unwrap_err().to_string();
        assert!(
            error.contains("rkd_distance_loss: `student_embed` needs a batch of at least 2 samples, got 1"),
            "{error}"
        );
    }
}
