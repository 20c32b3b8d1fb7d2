//! The supervised training step: cross-entropy on the labels, with the guard, update and
//! zeroed gradients every step shares ([`crate::distill::apply_step`]).

use dfdx::nn::{ModuleMut, TensorCollection};
use dfdx::optim::Optimizer;
use dfdx::prelude::{Cpu, Dim, Dtype, Gradients, OwnedTape, Shape, Tensor};
use dfdx::tensor_ops::Device;

use crate::distill::{apply_step, check_labels, BatchSize, StepError, StepOutput};
use crate::loss::LossTerms;

/// One step on the labels alone: cross-entropy (term `"ce"`), with the NaN/Inf guard, backward,
/// update and zeroed gradients of [`crate::distill::apply_step`].
pub fn supervised_step<M, O, E, S, C>(
    model: &mut M,
    optimizer: &mut O,
    input: Tensor<S, E, Cpu>,
    targets: &[usize],
    grads: Gradients<E, Cpu>,
    step: usize,
) -> Result<StepOutput<E>, StepError>
where
    E: Dtype,
    S: Shape,
    C: Dim,
    Cpu: Device<E>,
    M: ModuleMut<Tensor<S, E, Cpu, OwnedTape<E, Cpu>>, Output = Tensor<(usize, C), E, Cpu, OwnedTape<E, Cpu>>> + TensorCollection<E, Cpu>,
    O: Optimizer<M, Cpu, E>,
{
    check_labels(input.batch_size(), targets, step)?;
    let logits = model.forward_mut(crate::spatial::trace_input(input, grads));
    let ce = crate::loss::cross_entropy_loss(logits, targets).map_err(StepError::loss(step))?;
    let loss = LossTerms::new().add("ce", 1.0, ce);
    apply_step(loss, model, optimizer, step)
}
