//! The small 3-class task the behaviour tests train on, and how they read predictions.

use dfdx::prelude::*;

pub const FEATURES: usize = 8;
pub const CLASSES: usize = 3;
pub const BATCH: usize = 64;

/// A deterministic 3-class task: the class is the arg-max of three fixed non-linear scores.
pub fn task(samples: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) as f32 * 2.0 - 1.0
    };
    let mut inputs = Vec::with_capacity(samples * FEATURES);
    let mut labels = Vec::with_capacity(samples);
    for _ in 0..samples {
        let x: Vec<f32> = (0..FEATURES).map(|_| uniform()).collect();
        let scores = [
            (x[0] * 2.0 + x[1]).sin() + x[2] * x[3],
            x[4] - x[5] * x[0] + 0.5 * x[6],
            (x[7] * 1.5).cos() - x[1] * x[2] - 0.3,
        ];
        let label = (0..CLASSES).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
        inputs.extend(x);
        labels.push(label);
    }
    (inputs, labels)
}

pub fn batch(dev: &Cpu, inputs: &[f32], labels: &[usize], index: usize) -> (Tensor<(usize, Const<FEATURES>), f32, Cpu>, Vec<usize>) {
    let count = labels.len() / BATCH;
    let start = (index % count) * BATCH;
    let x = dev.tensor_from_vec(inputs[start * FEATURES..(start + BATCH) * FEATURES].to_vec(), (BATCH, Const));
    (x, labels[start..start + BATCH].to_vec())
}

pub fn predictions<M: Module<Tensor<(usize, Const<FEATURES>), f32, Cpu>, Output = Tensor<(usize, Const<CLASSES>), f32, Cpu>>>(
    model: &M,
    dev: &Cpu,
    inputs: &[f32],
) -> Vec<usize> {
    let n = inputs.len() / FEATURES;
    let logits = model.forward(dev.tensor_from_vec(inputs.to_vec(), (n, Const))).as_vec();
    logits
        .chunks(CLASSES)
        .map(|row| (0..CLASSES).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0))
        .collect()
}

pub fn agreement(a: &[usize], b: &[usize]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}
