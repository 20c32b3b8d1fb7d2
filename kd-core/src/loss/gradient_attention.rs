//! Gradient-based attention transfer: match the input gradients of the two networks.
//!
//! **Paper:** S. Zagoruyko, N. Komodakis, *Paying More Attention to Attention*, ICLR 2017, §3.2,
//! <https://arxiv.org/abs/1612.03928>.
//!
//! ```text
//! J_S = ∂L_CE(W_S, x) / ∂x,   J_T = ∂L_CE(W_T, x) / ∂x
//! L_gat = ½ ‖J_S − J_T‖²          (weighted by β in the objective: β/2 ‖J_S − J_T‖²)
//! ```
//!
//! `L_CE` is the batch-mean cross-entropy, so `J` carries a `1/B` factor exactly as PyTorch's
//! `torch.autograd.grad(F.cross_entropy(model(x), y), x)`.
//!
//! **The second derivative.** `∇_W L_gat = (∂J_S/∂W)ᵀ v` with `v = J_S − J_T`, which is a
//! Hessian-vector product of `L_CE`: `(∂J_S/∂W)ᵀ v = ∇_W (∇_x L_CE · v)`. dfdx 0.13 has no double
//! backward, so the directional derivative `∇_x L_CE · v` is taken by central finite
//! differences along `v̂ = v/‖v‖`:
//!
//! ```text
//! ∇_x L_CE(W, x) · v ≈ ‖v‖ · (L_CE(W, x + h·v̂) − L_CE(W, x − h·v̂)) / (2h)      error O(h²)
//! ```
//!
//! Back-propagating that scalar through both student forwards gives `∇_W L_gat` in one ordinary
//! backward pass, for any dfdx model. [`gradient_at_loss`] returns it shifted by a constant so
//! that its *value* is exactly `L_gat` and its *gradient* is the finite-difference HVP. The
//! tests check it against a full finite-difference gradient of `L_gat` in f64.
//!
//! The student must be deterministic in `forward` (dfdx's `Module`: no dropout, batch-norm in
//! inference mode), since the same function is evaluated at `x ± h·v̂`.

use dfdx::nn::Module;
use dfdx::prelude::*;

use crate::error::{self, in_loss, LossError};
use crate::loss::cross_entropy_loss;
use crate::ops::{scalar, value_of};

/// The input gradient `∂L_CE(model(input), targets)/∂input`, untaped.
///
/// Model parameters receive gradients in a throw-away accumulator; the model is not changed.
///
/// # Errors
/// If `targets` does not fit the model's logits (see [`cross_entropy_loss`]).
pub fn input_gradient<M, S, B, C, E, D>(model: &M, input: Tensor<S, E, D>, targets: &[usize]) -> Result<Tensor<S, E, D>, LossError>
where
    M: Module<Tensor<S, E, D, OwnedTape<E, D>>, Output = Tensor<(B, C), E, D, OwnedTape<E, D>>>,
    S: Shape,
    B: Dim,
    C: Dim,
    E: Dtype,
    D: Device<E>,
{
    let logits = model.forward(input.leaky_trace());
    let grads = cross_entropy_loss(logits, targets)?.backward();
    Ok(grads.get(&input))
}

/// `½ ‖J_S − J_T‖²`, with the gradient for the student's parameters as documented in the module.
///
/// # Arguments
/// - `student`: the student model (evaluated three times: once for `J_S`, twice for the HVP).
/// - `input`: the batch, carrying the student's gradient tape (`x.traced(grads)`).
/// - `targets`: the class of each sample, for `L_CE`.
/// - `teacher_input_grad`: `J_T`, from [`input_gradient`] on the teacher.
/// - `fd_step`: the finite-difference step `h` in input units (> 0); `1e-3` suits f32 inputs of
///   unit scale, f64 tolerates `1e-5`.
///
/// # Errors
/// If `fd_step` is not finite and positive, `input` is empty, `teacher_input_grad` has another
/// shape than `input`, or `targets` does not fit the student's logits.
pub fn gradient_at_loss<M, S, B, C, E, D>(
    student: &M,
    input: Tensor<S, E, D, OwnedTape<E, D>>,
    targets: &[usize],
    teacher_input_grad: Tensor<S, E, D>,
    fd_step: f64,
) -> Result<Tensor<Rank0, E, D, OwnedTape<E, D>>, LossError>
where
    M: Module<Tensor<S, E, D, OwnedTape<E, D>>, Output = Tensor<(B, C), E, D, OwnedTape<E, D>>>,
    S: Shape,
    B: Dim,
    C: Dim,
    E: Dtype,
    D: Device<E>,
{
    let h = error::positive("fd_step", fd_step)
        .and_then(|h| {
            error::non_empty("input", input.shape())?;
            error::same_shape(("input", input.shape()), ("teacher_input_grad", teacher_input_grad.shape()))?;
            Ok(h)
        })
        .map_err(in_loss("gradient_at_loss"))?;
    let (input, tape) = input.split_tape();
    let difference = input_gradient(student, input.clone(), targets)? - teacher_input_grad;
    let half_sq_norm = value_of(&(difference.clone().square().sum() * scalar::<E>(0.5)));
    let norm = (2.0 * half_sq_norm).sqrt();

    // Direction v̂ = v/‖v‖; with v = 0 the loss and its gradient are 0 (the offset is then 0).
    let step = if norm > 0.0 {
        difference * scalar::<E>(h / norm)
    } else {
        difference
    };
    let ce_plus = cross_entropy_loss(student.forward((input.clone() + step.clone()).put_tape(tape)), targets)?;
    let ce_minus = cross_entropy_loss(student.forward((input - step).retaped::<OwnedTape<E, D>>()), targets)?;
    let slope = if norm > 0.0 { norm / (2.0 * h) } else { 0.0 };
    let surrogate = (ce_plus - ce_minus) * scalar::<E>(slope);
    // Shift by a constant so the value is ½‖v‖² while the gradient stays the HVP.
    let offset = half_sq_norm - value_of(&surrogate);
    Ok(surrogate + scalar::<E>(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Net = dfdx::nn::modules::Linear<2, 3, f64, Cpu>;

    #[test]
    fn finite_difference_step_is_checked_by_name() {
        let dev = Cpu::default();
        let model: Net = dev.build_module::<dfdx::nn::builders::Linear<2, 3>, f64>();
        let input: Tensor<Rank2<2, 2>, f64, _> = dev.ones();
        let teacher_grad = input_gradient(&model, input.clone(), &[0, 1]).unwrap();
        let error = gradient_at_loss(&model, input.leaky_trace(), &[0, 1], teacher_grad, 0.0)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("gradient_at_loss: `fd_step` must be finite and > 0, got 0"),
            "{error}"
        );
    }

    #[test]
    fn a_student_equal_to_its_teacher_has_zero_loss_and_zero_weight_gradient() {
        let dev = Cpu::default();
        let model: Net = dev.build_module::<dfdx::nn::builders::Linear<2, 3>, f64>();
        let input: Tensor<Rank2<2, 2>, f64, _> = dev.tensor([[0.5, -1.0], [2.0, 0.25]]);
        let teacher_grad = input_gradient(&model, input.clone(), &[2, 0]).unwrap();
        let loss = gradient_at_loss(&model, input.traced(model.alloc_grads()), &[2, 0], teacher_grad, 1e-4).unwrap();
        assert_eq!(value_of(&loss), 0.0);
        let grads = loss.backward();
        assert!(grads.get(&model.weight).as_vec().iter().all(|g| *g == 0.0));
    }
}
