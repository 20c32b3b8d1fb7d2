//! Constraints applied to the weights after each update, and the schedules of the dropout
//! papers that go with them.
//!
//! Hinton et al. (2012, "Improving neural networks by preventing co-adaptation of feature
//! detectors") and Srivastava et al. (2014, "Dropout", §5.1 and appendix A) train their MNIST
//! dropout nets with a **max-norm** constraint: after every update, each hidden unit's incoming
//! weight vector is rescaled to an L2 norm of at most `c` (15 in the 2012 paper). This lets a
//! large learning rate explore without the weights blowing up. Their momentum rises linearly
//! from 0.5 to 0.99 over the first 500 epochs ([`momentum_ramp`]) while the learning rate decays
//! by 0.998 per epoch, and the update is `Δw ← p·Δw − (1 − p)·ε·∇`, which dfdx's classic
//! momentum (`v ← ∇ + p·v`, `w ← w − lr·v`) matches with `lr = (1 − p)·ε`.

use dfdx::prelude::{Cpu, Tensor};
use dfdx::shapes::Rank2;

/// Rescales each row of `weight` (a dfdx `Linear`'s `(out, in)` weight: row `j` is unit `j`'s
/// incoming weights) whose L2 norm exceeds `max_norm` to exactly `max_norm`; returns how many
/// rows were rescaled.
pub fn max_norm<const OUT: usize, const IN: usize>(weight: &mut Tensor<Rank2<OUT, IN>, f32, Cpu>, max_norm: f32) -> usize {
    let mut values = weight.as_vec();
    let mut clipped = 0;
    for row in values.chunks_mut(IN) {
        let norm = row.iter().map(|w| w * w).sum::<f32>().sqrt();
        if norm > max_norm {
            let scale = max_norm / norm;
            row.iter_mut().for_each(|w| *w *= scale);
            clipped += 1;
        }
    }
    if clipped > 0 {
        weight.copy_from(&values);
    }
    clipped
}

/// The momentum of epoch `epoch`: from `start` rising linearly to `end` at epoch `ramp_epochs`,
/// then constant.
pub fn momentum_ramp(epoch: usize, ramp_epochs: usize, start: f64, end: f64) -> f64 {
    let progress = if ramp_epochs == 0 {
        1.0
    } else {
        (epoch as f64 / ramp_epochs as f64).min(1.0)
    };
    start + (end - start) * progress
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::prelude::*;

    /// A row above the bound comes back at exactly the bound, in the same direction; a row
    /// below it is untouched.
    #[test]
    fn rows_above_the_bound_are_rescaled_to_it() {
        let dev = Cpu::default();
        let mut weight = dev.tensor([[3.0f32, 4.0, 0.0], [0.1, 0.2, 0.2]]);
        assert_eq!(max_norm(&mut weight, 2.0), 1);
        let rows = weight.array();
        assert_eq!(rows[0], [1.2, 1.6, 0.0]);
        assert_eq!(rows[1], [0.1, 0.2, 0.2]);
        assert_eq!(max_norm(&mut weight, 2.0), 0, "already within the bound");
    }

    #[test]
    fn momentum_rises_linearly_then_holds() {
        assert_eq!(momentum_ramp(0, 10, 0.5, 0.99), 0.5);
        assert!((momentum_ramp(5, 10, 0.5, 0.99) - 0.745).abs() < 1e-12);
        assert_eq!(momentum_ramp(10, 10, 0.5, 0.99), 0.99);
        assert_eq!(momentum_ramp(40, 10, 0.5, 0.99), 0.99);
        assert_eq!(momentum_ramp(0, 0, 0.5, 0.99), 0.99);
    }
}
