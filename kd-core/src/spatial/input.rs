//! Data batches as constants on the tape, PyTorch's `requires_grad = False` for inputs.
//!
//! dfdx 0.13 has no such flag: a batch traced into a tape gets a gradient like any tensor, and
//! the first layer spends a whole matrix product on it that nothing reads (on the Hinton
//! student, 784→800 at batch 128, a tenth of a KD step's multiply-adds). [`trace_input`] traces
//! a batch with its gradient marked as unwanted, and kd's fused layers ([`super::linear`],
//! [`super::conv2d`]) skip that product; dfdx's own ops still compute theirs.
//!
//! The mark is the batch's gradient buffer, put in the gradients before tracing and filled
//! with NaN: accumulating into it keeps it NaN, so a skipped gradient can never pass for a
//! computed one. dfdx's tensor ids are private, which rules out a set of ids.

use dfdx::prelude::*;

/// Traces a data batch into `gradients` for a training step: every op downstream is recorded,
/// so the parameters get their gradients, but the batch's own gradient is not computed by
/// kd's fused layers; read back, it is NaN. For a batch whose gradient is wanted (saliency,
/// gradient-based attention transfer), use dfdx's `traced`.
///
/// ```
/// use dfdx::prelude::*;
/// use kd_core::nn::builders::Linear;
/// use kd_core::spatial::trace_input;
///
/// let dev = Cpu::default();
/// let mut layer = dev.build_module::<Linear<3, 2>, f32>();
/// let batch = dev.tensor([[1.0f32, 2.0, 3.0]]);
/// let grads = layer.forward_mut(trace_input(batch.clone(), layer.alloc_grads())).sum().backward();
/// assert_eq!(grads.get(&layer.weight).array(), [[1.0, 2.0, 3.0]; 2]);
/// ```
pub fn trace_input<S: Shape, E: Dtype>(input: Tensor<S, E, Cpu>, mut gradients: Gradients<E, Cpu>) -> Tensor<S, E, Cpu, OwnedTape<E, Cpu>> {
    if let (Some(nan), Ok(gradient)) = (E::from_f64(f64::NAN), gradients.get_or_alloc_mut(&input)) {
        gradient.iter_mut().for_each(|g| *g = nan);
    }
    input.traced(gradients)
}

/// Whether `gradient` (an input's, fetched in a backward op) carries [`trace_input`]'s mark.
pub(crate) fn is_unwanted<E: Dtype>(gradient: &[E]) -> bool {
    gradient.first().is_some_and(|g| g.partial_cmp(g).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::builders::{Conv2D, Flatten2D, Linear};

    type Net = (Conv2D<2, 3, 3, 1, 1>, ReLU, Flatten2D<48>, Linear<48, 5>);

    #[test]
    fn parameters_get_the_same_gradients_and_the_batch_none() {
        let dev = Cpu::seed_from_u64(3);
        let mut net = dev.build_module::<Net, f64>();
        let batch: Tensor<(usize, Const<2>, usize, usize), f64, _> = dev.sample_normal_like(&(4, Const, 4, 4));
        let mut step = |traced: Tensor<_, _, _, OwnedTape<f64, Cpu>>| net.forward_mut(traced).square().sum().backward();
        let as_data = step(trace_input(batch.clone(), Gradients::leaky()));
        let as_tensor = step(batch.clone().traced(Gradients::leaky()));
        let (conv, _, _, linear) = &net;
        assert_eq!(as_data.get(&conv.weight).as_vec(), as_tensor.get(&conv.weight).as_vec());
        assert_eq!(as_data.get(&linear.weight).as_vec(), as_tensor.get(&linear.weight).as_vec());
        assert_eq!(as_data.get(&linear.bias).as_vec(), as_tensor.get(&linear.bias).as_vec());
        assert!(
            as_data.get(&batch).as_vec().iter().all(|g| g.is_nan()),
            "the skipped gradient reads as NaN"
        );
        assert!(as_tensor.get(&batch).as_vec().iter().any(|g| *g != 0.0));
    }
}
