//! Neuron Selectivity Transfer: match the distributions of channel maps with MMD.
//!
//! **Paper:** Z. Huang, N. Wang, *Like What You Like: Knowledge Distill via Neuron Selectivity
//! Transfer*, 2017, <https://arxiv.org/abs/1707.01219>.
//!
//! Each channel's spatial map `f^k ∈ R^{HW}`, L2-normalised, is one sample; the student's and
//! the teacher's channels are two sample sets compared by the squared maximum mean discrepancy:
//!
//! ```text
//! L_MMD² = mean_{i,i'} k(f_T^i, f_T^i') + mean_{j,j'} k(f_S^j, f_S^j') − 2 · mean_{i,j} k(f_S^j, f_T^i)
//! k: linear  xᵀy;  polynomial (xᵀy + c)^d (d = 2, c = 0);  Gaussian exp(−‖x − y‖² / (2σ²))
//! ```
//!
//! **Convention:** RepDistiller `NSTLoss` / mdistiller `nst_loss`: means over `B·C·C`
//! (per-sample kernel matrices, averaged over the batch too), the constant teacher–teacher term
//! **included** so the value is the MMD² itself (the official MXNet code drops it; the gradient
//! is the same). Weight 50 in RepDistiller; the paper writes `λ/2`. Channel counts may differ;
//! a larger map is adaptive-average-pooled to the smaller one's size first, as RepDistiller does.

use dfdx::prelude::*;

use crate::spatial::pool_to_common_size;

use crate::error::{self, in_loss, Error, LossError};
use crate::ops::{l2_normalize_last, scalar};

/// The kernel of the MMD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NstKernel {
    /// `k(x, y) = xᵀy`: matches the channel means.
    Linear,
    /// `k(x, y) = (xᵀy + constant)^degree`; the paper's choice is degree 2, constant 0.
    Polynomial {
        /// The exponent `d`.
        degree: i32,
        /// The offset `c`.
        constant: f64,
    },
    /// `k(x, y) = exp(−‖x − y‖² / (2σ²))`.
    Gaussian {
        /// The bandwidth `σ` (> 0).
        sigma: f64,
    },
}

impl Default for NstKernel {
    fn default() -> Self {
        Self::Polynomial {
            degree: crate::defaults::NST_KERNEL_DEGREE,
            constant: crate::defaults::NST_KERNEL_CONSTANT,
        }
    }
}

impl NstKernel {
    /// Checks the kernel's parameters: a polynomial degree of at least 1 and a finite, non-negative
    /// constant (a positive-definite kernel; degree 0 would make every MMD zero), a finite,
    /// positive Gaussian σ.
    pub fn validate(&self) -> error::Result<()> {
        match *self {
            NstKernel::Linear => Ok(()),
            NstKernel::Polynomial { degree, constant } => {
                if degree < 1 {
                    return Err(Error::InvalidSetting {
                        argument: "degree",
                        requirement: ">= 1",
                        value: f64::from(degree),
                    });
                }
                error::non_negative("constant", constant).map(|_| ())
            }
            NstKernel::Gaussian { sigma } => error::positive("sigma", sigma).map(|_| ()),
        }
    }
}

/// `(B, C, H, W)` -> `(B, C, HW)` with every channel map L2-normalised.
fn normalized_channel_maps<B: Dim, C: Dim, H: Dim, W: Dim, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    feat: Tensor<(B, C, H, W), E, D, T>,
) -> Tensor<(B, C, usize), E, D, T> {
    let (batch, channels, height, width) = *feat.shape();
    l2_normalize_last(feat.reshape_like(&(batch, channels, height.size() * width.size())))
}

/// The kernel matrix `k(a_i, b_j)` per sample: `(B, M, N)` from `(B, M, HW)` and `(B, N, HW)`.
fn kernel_matrix<B: Dim, M: Dim, N: Dim, E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<R>, R: Tape<E, D>>(
    a: Tensor<(B, M, usize), E, D, T>,
    b: Tensor<(B, N, usize), E, D, R>,
    kernel: NstKernel,
) -> Tensor<(B, M, N), E, D, T> {
    match kernel {
        NstKernel::Linear => a.matmul(b.permute::<_, Axes3<0, 2, 1>>().contiguous()),
        NstKernel::Polynomial { degree, constant } => {
            (a.matmul(b.permute::<_, Axes3<0, 2, 1>>().contiguous()) + scalar::<E>(constant)).powi(degree)
        }
        NstKernel::Gaussian { sigma } => {
            // ‖a − b‖² = ‖a‖² + ‖b‖² − 2aᵀb, with the norms broadcast along the other set.
            let a_sq = a.retaped::<T>().square().sum::<_, Axis<2>>();
            let b_sq = b.retaped::<R>().square().sum::<_, Axis<2>>();
            let dot = a.matmul(b.permute::<_, Axes3<0, 2, 1>>().contiguous());
            let shape = *dot.shape();
            let sq_dist = dot * scalar::<E>(-2.0) + a_sq.broadcast_like::<_, Axis<2>>(&shape) + b_sq.broadcast_like::<_, Axis<1>>(&shape);
            (sq_dist * scalar::<E>(-1.0 / (2.0 * sigma * sigma))).exp()
        }
    }
}

/// NST's MMD² between the student's and the teacher's channel-map distributions.
///
/// # Arguments
/// - `student_feat`: `(B, C_s, H, W)`, taped.
/// - `teacher_feat`: `(B, C_t, H, W)`, untaped; `C_t` may differ from `C_s`.
/// - `kernel`: the MMD kernel ([`NstKernel::default`] is the paper's polynomial, d = 2, c = 0).
///
/// # Errors
/// If `kernel` is invalid ([`NstKernel::validate`]), a map is empty, the batch sizes differ, or
/// one map is taller and the other wider.
pub fn nst_loss<B, Cs, Ct, Hs, Ws, Ht, Wt, E, D, T>(
    student_feat: Tensor<(B, Cs, Hs, Ws), E, D, T>,
    teacher_feat: Tensor<(B, Ct, Ht, Wt), E, D>,
    kernel: NstKernel,
) -> Result<Tensor<Rank0, E, D, T>, LossError>
where
    B: Dim,
    Cs: Dim,
    Ct: Dim,
    Hs: Dim,
    Ws: Dim,
    Ht: Dim,
    Wt: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
{
    let (student, teacher) = (("student_feat", student_feat.shape()), ("teacher_feat", teacher_feat.shape()));
    kernel
        .validate()
        .and_then(|()| error::paired_batch(student, teacher))
        .and_then(|_| error::poolable(student, teacher))
        .map_err(in_loss("nst_loss"))?;
    let (student_feat, teacher_feat) = pool_to_common_size(student_feat, teacher_feat);

    let student = normalized_channel_maps(student_feat);
    let teacher = normalized_channel_maps(teacher_feat);
    let teacher_teacher = kernel_matrix(teacher.clone(), teacher.clone(), kernel).mean();
    let student_student = kernel_matrix(student.retaped::<T>(), student.retaped::<T>(), kernel).mean();
    let student_teacher = kernel_matrix(student, teacher, kernel).mean();
    Ok(student_student + teacher_teacher + student_teacher * scalar::<E>(-2.0))
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
        let loss = nst_loss(student_feat(), teacher_feat(), NstKernel::default()).unwrap();
        assert_close!(value_of(&loss), 0.3574558987, TABLE);
    }

    #[test]
    fn identical_distributions_have_zero_mmd_for_every_kernel() {
        let feat = wavy::<Rank4<2, 3, 2, 2>>(5.0, 1.0);
        for kernel in [NstKernel::Linear, NstKernel::default(), NstKernel::Gaussian { sigma: 0.7 }] {
            let loss = nst_loss(feat.leaky_trace(), feat.clone() * 3.0, kernel).unwrap();
            assert_close!(value_of(&loss), 0.0, Tolerance::rel_abs(0.0, 1e-12));
        }
    }

    #[test]
    fn gaussian_bandwidth_is_checked_by_name() {
        let error = nst_loss(student_feat(), teacher_feat(), NstKernel::Gaussian { sigma: 0.0 })
            .unwrap_err()
            .to_string();
        assert!(error.contains("nst_loss: `sigma` must be finite and > 0, got 0"), "{error}");
    }
}
