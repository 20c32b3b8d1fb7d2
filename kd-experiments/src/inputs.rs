//! Batches of images as tensors, and evaluation over a test split: flattened for the MLPs,
//! `(B, 1, H, W)` for the CNNs.

use dfdx::prelude::*;
use kd_core::data::mnist::{Split, MEAN_STD};
use kd_core::train::{Augmentation, Evaluation, Fitted};
use rand::rngs::StdRng;

/// A batch of flattened 28 × 28 images.
pub type Flat = Tensor<(usize, Const<784>), f32, Cpu>;
/// A batch of one-channel images; height and width stay dynamic (the macro checks them at
/// compile time against `input`).
pub type Images = Tensor<(usize, Const<1>, usize, usize), f32, Cpu>;
/// Ten-class logits.
pub type Logits = Tensor<(usize, Const<10>), f32, Cpu>;

/// An augmentation and the random stream it draws from.
pub type Augment<'a> = Option<(&'a Augmentation, &'a mut StdRng)>;

/// Hinton's ±2 px jitter drawn from `rng` when `on`.
pub fn jitter_if(on: bool, rng: &mut StdRng) -> Augment<'_> {
    on.then_some((&Augmentation::HINTON_JITTER, rng))
}

/// The standardised pixels and labels of the samples `indices` of `split`, augmented when
/// `augment` is given.
fn pixels(split: &Split, indices: &[usize], augment: Augment<'_>) -> (Vec<f32>, Vec<usize>) {
    let (mut pixels, labels) = split.batch(indices);
    if let Some((augmentation, rng)) = augment {
        let background = (0.0 - MEAN_STD.0) / MEAN_STD.1;
        augmentation.apply(&mut pixels, split.height, split.width, background, rng);
    }
    (pixels, labels)
}

/// The samples `indices` of `split`, flattened, augmented when `augment` is given.
pub fn flat_batch(dev: &Cpu, split: &Split, indices: &[usize], augment: Augment<'_>) -> (Flat, Vec<usize>) {
    let (pixels, labels) = pixels(split, indices, augment);
    (dev.tensor_from_vec(pixels, (indices.len(), Const)), labels)
}

/// The samples `indices` of `split` as `(B, 1, H, W)` images, augmented when `augment` is
/// given.
pub fn image_batch(dev: &Cpu, split: &Split, indices: &[usize], augment: Augment<'_>) -> (Images, Vec<usize>) {
    let (pixels, labels) = pixels(split, indices, augment);
    (
        dev.tensor_from_vec(pixels, (indices.len(), Const, split.height, split.width)),
        labels,
    )
}

/// Calls `visit` with the indices of `split`, in order, `chunk` at a time.
pub fn in_chunks(split: &Split, chunk: usize, visit: impl FnMut(&[usize])) {
    let indices: Vec<usize> = (0..split.len()).collect();
    indices.chunks(chunk).for_each(visit);
}

/// Evaluates `predict` (a batch's logits, row-major, and its labels) over `split` in chunks
/// of `chunk`.
pub fn evaluate_with(split: &Split, chunk: usize, mut predict: impl FnMut(&[usize]) -> (Vec<f32>, Vec<usize>)) -> Evaluation {
    let mut evaluation = Evaluation::new(10);
    in_chunks(split, chunk, |indices| {
        let (logits, labels) = predict(indices);
        evaluation.add(&logits, &labels);
    });
    evaluation
}

/// An MLP's test evaluation.
pub fn evaluate_flat<M: Module<Flat, Output = Logits>>(model: &M, dev: &Cpu, split: &Split) -> Evaluation {
    evaluate_with(split, 1000, |indices| {
        let (x, labels) = flat_batch(dev, split, indices, None);
        (model.forward(x).as_vec(), labels)
    })
}

/// A CNN's test evaluation.
pub fn evaluate_images<M: Module<Images, Output = Logits>>(model: &M, dev: &Cpu, split: &Split) -> Evaluation {
    evaluate_with(split, 500, |indices| {
        let (x, labels) = image_batch(dev, split, indices, None);
        (model.forward(x).as_vec(), labels)
    })
}

/// The test errors recorded after a stage's last epoch.
pub fn final_errors(fitted: &Fitted) -> usize {
    fitted.last("test_errors").and_then(|e| e.as_u64()).unwrap_or(0) as usize
}
