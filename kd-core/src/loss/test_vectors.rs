//! The shared inputs of `methods.md`'s test vectors (computed there with transcriptions of the
//! reference code in pure Python and PyTorch float64), for the per-loss unit tests.

use dfdx::prelude::*;

pub(crate) type Dev = Cpu;

pub(crate) fn student_logits() -> Tensor<Rank2<2, 3>, f64, Dev> {
    Dev::default().tensor([[1.0, 2.0, 0.5], [0.2, -1.0, 3.0]])
}

pub(crate) fn teacher_logits() -> Tensor<Rank2<2, 3>, f64, Dev> {
    Dev::default().tensor([[0.5, 2.5, 0.0], [1.0, -0.5, 2.0]])
}

pub(crate) const LABELS: [usize; 2] = [1, 2];

pub(crate) fn student_feat() -> Tensor<Rank4<2, 2, 2, 2>, f64, Dev> {
    Dev::default().tensor([
        [[[1.0, -2.0], [0.5, 3.0]], [[0.0, 1.0], [-1.0, 2.0]]],
        [[[2.0, 0.5], [-0.5, 1.0]], [[1.5, -1.0], [0.0, 0.5]]],
    ])
}

pub(crate) fn teacher_feat() -> Tensor<Rank4<2, 2, 2, 2>, f64, Dev> {
    Dev::default().tensor([
        [[[0.5, -1.0], [1.0, 2.0]], [[1.0, 0.0], [-2.0, 1.0]]],
        [[[1.0, 1.0], [0.0, -1.0]], [[2.0, -0.5], [0.5, 1.0]]],
    ])
}

pub(crate) fn student_embed() -> Tensor<Rank2<3, 2>, f64, Dev> {
    Dev::default().tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
}

pub(crate) fn teacher_embed() -> Tensor<Rank2<3, 2>, f64, Dev> {
    Dev::default().tensor([[0.5, 0.5], [1.0, 3.0], [2.0, -1.0]])
}

/// methods.md states its values to 10 decimal places.
pub(crate) const TABLE: crate::testing::Tolerance = crate::testing::Tolerance::rel_abs(1e-9, 1e-10);

/// A deterministic pseudo-random tensor in `[-scale, scale]` (no RNG state shared across tests).
pub(crate) fn wavy<S: ConstShape>(seed: f64, scale: f64) -> Tensor<S, f64, Dev> {
    let numel = S::default().num_elements();
    let data = (0..numel)
        .map(|i| scale * ((i as f64 * 7.13 + seed * 3.7).sin() + 0.3 * (i as f64 * 1.9 + seed).cos()) / 1.3)
        .collect();
    Dev::default().tensor_from_vec(data, S::default())
}
