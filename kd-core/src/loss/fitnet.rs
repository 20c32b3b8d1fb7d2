//! FitNet hints: a student layer regresses the teacher's through a learned adapter.
//!
//! **Paper:** A. Romero, N. Ballas, S. E. Kahou, A. Chassang, C. Gatta, Y. Bengio, *FitNets:
//! Hints for Thin Deep Nets*, ICLR 2015, <https://arxiv.org/abs/1412.6550>.
//!
//! ```text
//! L_hint = mean over all elements of (r(f_s) − f_t)²          r: the adapter ("regressor")
//! ```
//!
//! **Convention:** mean squared error over every element (`nn.MSELoss()`), RepDistiller's
//! `HintLoss`, used there with weight 100 in a single stage. The paper writes `½‖·‖²` and trains
//! the hint in a first stage; the factor and the schedule belong to the regime, not the loss.
//!
//! **Adapters** (builders, so `dev.build_module::<Conv1x1Adapter<64, 256>, f32>()`):
//! [`LinearAdapter`] maps `(B, I)` vectors to `(B, O)`; [`Conv1x1Adapter`] maps `(B, I, H, W)`
//! to `(B, O, H, W)`; RepDistiller's spatial `ConvReg` variants also change the size:
//! [`ConvRegDown`] halves it (stride-2 conv), [`ConvRegUp`] doubles it (transposed conv) and
//! [`ConvRegShrink`] trims `K − 1` (larger kernel). All are dfdx modules, so the optimiser
//! updates them with the student, and their channel counts are const generics: a width mismatch
//! the adapter does not bridge is a type error.

use dfdx::prelude::*;
use rayon::prelude::*;

use crate::error::{self, in_loss, LossError};
use crate::spatial::scratch::copy_of;

/// The FitNet hint: mean squared error between the adapted student feature and the teacher's.
///
/// # Arguments
/// - `student_feat`: the student's feature **after** its adapter, taped.
/// - `teacher_feat`: the teacher's feature, untaped.
///
/// # Errors
/// If the features are empty or their runtime shapes differ.
pub fn hint_loss<S: Shape, E: Dtype, T: Tape<E, Cpu>>(
    student_feat: Tensor<S, E, Cpu, T>,
    teacher_feat: Tensor<S, E, Cpu>,
) -> Result<Tensor<Rank0, E, Cpu, T>, LossError> {
    error::non_empty("student_feat", student_feat.shape())
        .and_then(|_| error::same_shape(("student_feat", student_feat.shape()), ("teacher_feat", teacher_feat.shape())))
        .map_err(in_loss("hint_loss"))?;
    // One op on the tape, not dfdx's sub, square and mean: those allocate and traverse three
    // feature-sized tensors each way, single-threaded (3.1 ms for a 64×16×28×28 map, the cost
    // of a convolution). The sum is kept in f64.
    let (student, mut tape) = student_feat.contiguous().split_tape();
    let count = student.shape().num_elements();
    let mut difference = copy_of(&student);
    let target = copy_of(&teacher_feat.contiguous());
    const CHUNK: usize = 1 << 14;
    let sum: f64 = difference
        .par_chunks_mut(CHUNK)
        .zip(target.par_chunks(CHUNK))
        .map(|(difference, target)| {
            difference.iter_mut().zip(target).fold(0.0, |sum, (d, &t)| {
                *d -= t;
                let d = d.to_f64().unwrap_or(f64::NAN);
                sum + d * d
            })
        })
        .sum();
    let mean = sum / count.max(1) as f64;
    let output = student.device().tensor(E::from_f64(mean).unwrap_or_default());

    let output_ghost = output.ghost();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&output_ghost)?;
        let upstream = grads.get_or_alloc_mut(&output_ghost)?[0].to_f64().unwrap_or(f64::NAN);
        // d/ds mean((s − t)²) = 2(s − t)/N
        let scale = E::from_f64(2.0 * upstream / count.max(1) as f64).unwrap_or_default();
        let gradient = grads.get_or_alloc_mut(&student)?;
        gradient
            .par_chunks_mut(CHUNK)
            .zip(difference.par_chunks(CHUNK))
            .for_each(|(gradient, difference)| gradient.iter_mut().zip(difference).for_each(|(g, &d)| *g += scale * d));
        Ok(())
    });
    Ok(output.put_tape(tape))
}

/// A linear adapter from `I` student features to `O` teacher features (dfdx's `Linear`).
pub type LinearAdapter<const I: usize, const O: usize> = dfdx::nn::builders::Linear<I, O>;

/// A 1×1 convolution from `I` to `O` channels at every position (torchdistill's 1×1 `ConvReg`,
/// GAN Compression's adapters).
pub type Conv1x1Adapter<const I: usize, const O: usize> = crate::nn::builders::Conv2D<I, O, 1>;

/// RepDistiller's `ConvReg` when the student map is twice the teacher's size (`s_H = 2·t_H`):
/// 3×3 convolution with stride 2 and padding 1, then batch-norm and ReLU.
pub type ConvRegDown<const I: usize, const O: usize> = (
    crate::nn::builders::Conv2D<I, O, 3, 2, 1>,
    dfdx::nn::builders::BatchNorm2D<O>,
    dfdx::nn::builders::ReLU,
);

/// RepDistiller's `ConvReg` when the student map is half the teacher's size (`2·s_H = t_H`):
/// 4×4 transposed convolution with stride 2 and padding 1, then batch-norm and ReLU.
pub type ConvRegUp<const I: usize, const O: usize> = (
    crate::nn::builders::ConvTrans2D<I, O, 4, 2, 1>,
    dfdx::nn::builders::BatchNorm2D<O>,
    dfdx::nn::builders::ReLU,
);

/// RepDistiller's `ConvReg` when the student map is at least the teacher's size
/// (`s_H ≥ t_H`): a convolution with kernel `1 + s_H − t_H` (no padding) shrinks it to the
/// teacher's size, then batch-norm and ReLU.
pub type ConvRegShrink<const I: usize, const O: usize, const KERNEL: usize> = (
    crate::nn::builders::Conv2D<I, O, KERNEL>,
    dfdx::nn::builders::BatchNorm2D<O>,
    dfdx::nn::builders::ReLU,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::loss::test_vectors::*;
    use crate::ops::value_of;
    use crate::testing::Tolerance;

    // d/ds mean((s − t)²) = 2(s − t)/N.
    #[test]
    fn value_and_gradient_in_closed_form() {
        let (student, teacher) = (student_feat(), teacher_feat());
        let loss = hint_loss(student.leaky_trace(), teacher.clone()).unwrap();
        let diff = (student.clone() - teacher).as_vec();
        assert_close!(value_of(&loss), diff.iter().map(|d| d * d).sum::<f64>() / 16.0, Tolerance::F64);
        let expected: Vec<f64> = diff.iter().map(|d| 2.0 * d / 16.0).collect();
        assert_close!(loss.backward().get(&student).as_vec(), expected, Tolerance::F64);
    }

    #[test]
    fn adapters_align_widths_in_the_types() {
        let dev = Cpu::default();
        let adapter = dev.build_module::<LinearAdapter<3, 5>, f64>();
        let vectors: Tensor<(usize, Const<3>), f64, _> = dev.ones_like(&(4, Const));
        let aligned: Tensor<(usize, Const<5>), f64, _> = adapter.forward(vectors);
        assert_eq!(aligned.shape().0, 4);

        let conv = dev.build_module::<Conv1x1Adapter<2, 6>, f64>();
        let bound = 1.0 / 2f64.sqrt();
        assert!(conv
            .weight
            .as_vec()
            .iter()
            .chain(conv.bias.as_vec().iter())
            .all(|w| w.abs() <= bound));
        let maps: Tensor<(usize, Const<2>, usize, usize), f64, _> = dev.ones_like(&(3, Const, 4, 5));
        let out: Tensor<(usize, Const<6>, usize, usize), f64, _> = conv.forward(maps);
        assert_eq!(out.shape().concrete(), [3, 6, 4, 5]);
    }

    #[test]
    fn convreg_variants_bring_the_student_map_to_the_teachers_size() {
        let dev = Cpu::default();
        let student: Tensor<(usize, Const<4>, usize, usize), f64, _> = dev.ones_like(&(2, Const, 8, 8));
        let down = dev.build_module::<ConvRegDown<4, 6>, f64>().forward(student.clone());
        assert_eq!(down.shape().concrete(), [2, 6, 4, 4]);
        let small: Tensor<(usize, Const<4>, usize, usize), f64, _> = dev.ones_like(&(2, Const, 4, 4));
        let up = dev.build_module::<ConvRegUp<4, 6>, f64>().forward(small);
        assert_eq!(up.shape().concrete(), [2, 6, 8, 8]);
        let shrink = dev.build_module::<ConvRegShrink<4, 6, 3>, f64>().forward(student);
        assert_eq!(shrink.shape().concrete(), [2, 6, 6, 6]);
    }
}
