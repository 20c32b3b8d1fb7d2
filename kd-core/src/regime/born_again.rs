//! Born-Again Networks: self-distillation across generations of one architecture.
//!
//! **Paper:** T. Furlanello, Z. C. Lipton, M. Tschannen, L. Itti, A. Anandkumar, *Born-Again
//! Neural Networks*, ICML 2018, <https://arxiv.org/abs/1805.04770>.
//!
//! ```text
//! θ₀ = argmin CE(f(x; θ), y)
//! θₖ = argmin L_KD(f(x; θ), f(x; θₖ₋₁)),   k = 1, 2, ...      ensemble: mean_k softmax(f(x; θₖ))
//! ```
//!
//! **Convention:** each generation starts from fresh weights (`build(k)`) and a fresh optimiser
//! (made inside `train`); the teacher of generation k is exactly generation k − 1's final model.
//! The ensemble averages the generations' probabilities (the paper's BAN ensemble).

/// The generations of a Born-Again run, oldest first.
#[derive(Debug, Clone)]
pub struct Generations<M> {
    /// Generation k at index k; generation 0 learned from the labels.
    pub models: Vec<M>,
}

impl<M> Generations<M> {
    /// Trains `count` generations. `build(k)` makes generation k's fresh model;
    /// `train(k, model, teacher)` trains it, with `teacher = None` for generation 0 (labels
    /// only) and `Some(generation k − 1)` after.
    ///
    /// # Errors
    /// The first error `train` returns.
    pub fn train<Error>(
        count: usize,
        mut build: impl FnMut(usize) -> M,
        mut train: impl FnMut(usize, &mut M, Option<&M>) -> Result<(), Error>,
    ) -> Result<Self, Error> {
        let mut models: Vec<M> = Vec::with_capacity(count);
        for generation in 0..count {
            let mut model = build(generation);
            train(generation, &mut model, models.last())?;
            models.push(model);
        }
        Ok(Generations { models })
    }
}

/// The mean of the softmax of each model's logits (`batch × classes`, row-major): the
/// ensemble's probabilities.
///
/// # Panics
/// If `logits` is empty or the models' outputs differ in length.
pub fn ensemble_probabilities(logits: &[Vec<f32>], classes: usize) -> Vec<f32> {
    assert!(!logits.is_empty(), "ensemble_probabilities: no models");
    let len = logits[0].len();
    assert!(
        logits.iter().all(|l| l.len() == len),
        "ensemble_probabilities: the models' outputs differ in length"
    );
    let mut mean = vec![0.0f32; len];
    for model in logits {
        for (row, out) in model.chunks(classes).zip(mean.chunks_mut(classes)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = row.iter().map(|&z| (z - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            out.iter_mut().zip(&exp).for_each(|(o, e)| *o += e / sum / logits.len() as f32);
        }
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_is_taught_by_the_one_before() {
        let mut seen = Vec::new();
        let generations = Generations::train(
            4,
            |k| vec![k as f32; 2],
            |k, model: &mut Vec<f32>, teacher: Option<&Vec<f32>>| {
                seen.push((k, teacher.cloned()));
                model.push(10.0 + k as f32); // "training"
                Ok::<(), ()>(())
            },
        )
        .expect("trains");
        assert_eq!(generations.models.len(), 4);
        assert_eq!(seen[0], (0, None));
        for (k, (_, teacher)) in seen.iter().enumerate().skip(1) {
            assert_eq!(teacher.as_ref(), Some(&generations.models[k - 1]), "generation {k}'s teacher");
        }
    }

    #[test]
    fn the_ensemble_averages_probabilities() {
        let a = vec![0.0f32, 0.0];
        let b = vec![(3.0f32).ln(), 0.0]; // softmax (0.75, 0.25)
        let p = ensemble_probabilities(&[a, b], 2);
        assert!((p[0] - 0.625).abs() < 1e-6 && (p[1] - 0.375).abs() < 1e-6, "{p:?}");
    }
}
