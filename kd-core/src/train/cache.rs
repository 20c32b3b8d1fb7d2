//! The teacher-output cache: a frozen teacher's logits on every training sample, computed
//! once and read back each epoch, for students that learn from the logits alone while the
//! inputs are not augmented.

/// A teacher's logits on every training sample, computed once and reused each epoch (valid
/// only while the inputs are not augmented).
pub struct TeacherCache {
    logits: Vec<f32>,
    classes: usize,
}

impl TeacherCache {
    /// Runs `forward` over `samples` in batches of `batch`; `forward(indices)` returns the
    /// logits of those samples, row-major.
    pub fn build(samples: usize, classes: usize, batch: usize, mut forward: impl FnMut(&[usize]) -> Vec<f32>) -> Self {
        let indices: Vec<usize> = (0..samples).collect();
        let mut logits = Vec::with_capacity(samples * classes);
        for chunk in indices.chunks(batch.max(1)) {
            logits.extend(forward(chunk));
        }
        TeacherCache { logits, classes }
    }

    /// The cached logits of `indices`, row-major.
    pub fn gather(&self, indices: &[usize]) -> Vec<f32> {
        indices
            .iter()
            .flat_map(|&i| self.logits[i * self.classes..(i + 1) * self.classes].iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teacher_cache_returns_each_samples_logits() {
        let cache = TeacherCache::build(5, 2, 2, |indices| indices.iter().flat_map(|&i| [i as f32, -(i as f32)]).collect());
        assert_eq!(cache.gather(&[3, 0]), vec![3.0, -3.0, 0.0, -0.0]);
    }
}
