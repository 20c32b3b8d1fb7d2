//! Activation-based attention transfer: match where the networks look.
//!
//! **Paper:** S. Zagoruyko, N. Komodakis, *Paying More Attention to Attention: Improving the
//! Performance of Convolutional Neural Networks via Attention Transfer*, ICLR 2017,
//! <https://arxiv.org/abs/1612.03928>.
//!
//! ```text
//! Q(A)   = vec( (1/C) Σ_c |A_c|^p ),  normalised: Q̂ = Q / max(‖Q‖₂, 1e-12)     (p = 2)
//! paper:        L = (1/B) Σ_b ‖ Q̂_S[b] − Q̂_T[b] ‖₂          (a norm, not squared)
//! authors code: L = mean over B·HW of (Q̂_S − Q̂_T)²
//! ```
//!
//! **Conventions** ([`AtConvention`]): `AuthorsCode` (the default) is
//! `szagoruyko/attention-transfer/utils.py:at_loss`, also RepDistiller's and mdistiller's, used
//! with β = 1000 ([`crate::defaults::ATTENTION`]) and p = 2
//! ([`crate::defaults::ATTENTION_P`]). `Paper` is torchdistill's `ATLoss(mode='paper')`, used
//! with `β/2`. Summing or averaging over channels only differs by a factor that the
//! normalisation removes. Student and teacher may have different channel counts; when their
//! spatial sizes differ, the larger map is adaptive-average-pooled to the smaller one first, as
//! RepDistiller and mdistiller do ([`pool_to_common_size`]).

use dfdx::prelude::*;
use rayon::prelude::*;

use crate::spatial::pool_to_common_size;
use crate::spatial::scratch::copy_of;

use crate::error::{self, in_loss, LossError};
use crate::ops::l2_normalize_last;

/// How the difference of two attention maps becomes a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AtConvention {
    /// Mean over `B·HW` of the squared difference (Zagoruyko's code, RepDistiller, mdistiller).
    #[default]
    AuthorsCode,
    /// Mean over the batch of the per-sample L2 norm of the difference (the paper's equation).
    Paper,
}

/// The normalised attention map of a feature map: `(B, C, H, W)` -> `(B, H·W)`.
///
/// `Q = (1/C) Σ_c |A_c|^p`, flattened and divided by `max(‖Q‖₂, 1e-12)` per sample.
pub fn attention_map<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    feat: Tensor<(B, C, H, W), E, Cpu, T>,
    p: f64,
) -> Tensor<(B, usize), E, Cpu, T>
where
    Cpu: Device<E>,
{
    let (batch, _, height, width) = *feat.shape();
    let map = if p == 2.0 {
        channel_mean_square(feat)
    } else {
        feat.abs()
            .powf(p)
            .mean::<_, Axis<1>>()
            .reshape_like(&(batch, height.size() * width.size()))
    };
    l2_normalize_last(map)
}

/// `(1/C) Σ_c A_c²` at every position, `(B, C, H, W) -> (B, H·W)`, as one op on the tape:
/// dfdx's square and channel mean traverse the feature map four times, single-threaded, and
/// cost as much as a convolution. The gradient is `2·A_c/C` times the map's.
fn channel_mean_square<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, T: Tape<E, Cpu>>(
    feat: Tensor<(B, C, H, W), E, Cpu, T>,
) -> Tensor<(B, usize), E, Cpu, T> {
    let (batch, channels, height, width) = *feat.shape();
    let positions = (height.size() * width.size()).max(1);
    let sample = positions * channels.size().max(1);
    let (feat, mut tape) = feat.contiguous().split_tape();
    let values = copy_of(&feat);
    let inverse_channels = E::from_f64(1.0 / channels.size().max(1) as f64).unwrap_or_default();
    let mut map = vec![E::default(); batch.size() * positions];
    map.par_chunks_mut(positions)
        .zip(values.par_chunks(sample))
        .for_each(|(map, sample)| {
            for plane in sample.chunks(positions) {
                map.iter_mut().zip(plane).for_each(|(q, &a)| *q += a * a);
            }
            map.iter_mut().for_each(|q| *q *= inverse_channels);
        });
    let output = feat.device().tensor_from_vec(map, (batch, height.size() * width.size()));

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&output_ghost)?;
        let map_gradient = std::mem::take(&mut **grads.get_or_alloc_mut(&output_ghost)?);
        let two_over_channels = inverse_channels + inverse_channels;
        grads
            .get_or_alloc_mut(&feat)?
            .par_chunks_mut(sample)
            .zip(values.par_chunks(sample).zip(map_gradient.par_chunks(positions)))
            .for_each(|(gradient, (sample, map_gradient))| {
                for (gradient, plane) in gradient.chunks_mut(positions).zip(sample.chunks(positions)) {
                    for ((g, &a), &q) in gradient.iter_mut().zip(plane).zip(map_gradient) {
                        *g += two_over_channels * a * q;
                    }
                }
            });
        **grads.get_or_alloc_mut(&output_ghost)? = map_gradient;
        Ok(())
    });
    output.put_tape(tape)
}

/// Attention transfer between one student and one teacher feature map.
///
/// # Arguments
/// - `student_feat`: `(B, C_s, H_s, W_s)`, taped.
/// - `teacher_feat`: `(B, C_t, H_t, W_t)`, untaped; the larger map is pooled to the other's size.
/// - `p`: the power of the channel reduction (2 in the paper).
/// - `convention`: see [`AtConvention`].
///
/// # Errors
/// If a map is empty, the batch sizes differ, one map is taller and the other wider, or `p` is
/// not finite and positive.
pub fn at_loss<B, Cs, Ct, Hs, Ws, Ht, Wt, E, T>(
    student_feat: Tensor<(B, Cs, Hs, Ws), E, Cpu, T>,
    teacher_feat: Tensor<(B, Ct, Ht, Wt), E, Cpu>,
    p: f64,
    convention: AtConvention,
) -> Result<Tensor<Rank0, E, Cpu, T>, LossError>
where
    B: Dim,
    Cs: Dim,
    Ct: Dim,
    Hs: Dim,
    Ws: Dim,
    Ht: Dim,
    Wt: Dim,
    E: Dtype,
    T: Tape<E, Cpu>,
    Cpu: Device<E>,
{
    let (student, teacher) = (("student_feat", student_feat.shape()), ("teacher_feat", teacher_feat.shape()));
    error::positive("p", p)
        .and_then(|_| error::paired_batch(student, teacher))
        .and_then(|_| error::poolable(student, teacher))
        .map_err(in_loss("at_loss"))?;
    let (student_feat, teacher_feat) = pool_to_common_size(student_feat, teacher_feat);

    let diff = attention_map(student_feat, p) - attention_map(teacher_feat, p);
    Ok(match convention {
        AtConvention::AuthorsCode => diff.square().mean(),
        AtConvention::Paper => {
            // sqrt(max(Σ d², ε²)): equal maps give a zero, finite gradient as in PyTorch.
            let eps = crate::ops::NORMALIZE_EPS;
            diff.square().sum::<_, Axis<1>>().clamp(eps * eps, f64::INFINITY).sqrt().mean()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    #[test]
    fn methods_md_test_vectors() {
        let code = at_loss(student_feat(), teacher_feat(), 2.0, AtConvention::AuthorsCode).unwrap();
        assert_close!(value_of(&code), 0.0635282245, TABLE);
        let paper = at_loss(student_feat(), teacher_feat(), 2.0, AtConvention::Paper).unwrap();
        assert_close!(value_of(&paper), 0.4356470334, TABLE);
    }

    #[test]
    fn maps_are_unit_norm_and_the_loss_ignores_feature_scale() {
        let feat = wavy::<Rank4<3, 4, 2, 3>>(1.0, 2.0);
        let map = attention_map(feat.clone(), 2.0);
        let norms = map.square().sum::<_, Axis<1>>().sqrt();
        assert_close!(norms, [1.0; 3], Tolerance::F64);
        for convention in [AtConvention::AuthorsCode, AtConvention::Paper] {
            let loss = at_loss(feat.leaky_trace(), feat.clone() * 7.5, 2.0, convention).unwrap();
            assert_close!(value_of(&loss), 0.0, Tolerance::rel_abs(0.0, 1e-11));
            let grads = loss.backward().get(&feat).as_vec();
            assert!(grads.iter().all(|g| g.is_finite() && g.abs() < 1e-9), "{grads:?}");
        }
    }

    #[test]
    fn a_larger_teacher_map_is_pooled_to_the_students_size() {
        let student = wavy::<Rank4<2, 3, 2, 3>>(3.0, 1.0);
        let teacher = wavy::<Rank4<2, 5, 4, 6>>(4.0, 1.0);
        let pooled = crate::spatial::adaptive_avg_pool2d(teacher.clone(), (2, 3));
        for convention in [AtConvention::AuthorsCode, AtConvention::Paper] {
            let direct = at_loss(student.clone(), pooled.clone(), 2.0, convention).unwrap();
            let automatic = at_loss(student.clone(), teacher.clone(), 2.0, convention).unwrap();
            assert_close!(value_of(&automatic), value_of(&direct), Tolerance::F64);
        }
    }

    #[test]
    fn maps_without_a_smaller_one_are_a_clear_error() {
        let dev = Cpu::default();
        let student: Tensor<(usize, usize, usize, usize), f64, _> = dev.zeros_like(&(2, 3, 4, 2));
        let teacher: Tensor<(usize, usize, usize, usize), f64, _> = dev.zeros_like(&(2, 5, 2, 4));
        let error = at_loss(student, teacher, 2.0, AtConvention::AuthorsCode).unwrap_err().to_string();
        assert!(error.contains("one is taller and the other wider"), "{error}");
    }
}
