//! The training engine's pieces: seeded batching, pixel-jitter augmentation, evaluation with a
//! confusion matrix, metrics as JSON lines, atomic per-epoch checkpoints with exact resume
//! ([`checkpoint`], [`optim`]), the shared epoch loop ([`fit`]), a supervised step with the
//! same NaN guard as [`crate::distill::distill_step`], a teacher-output cache, and the thread
//! pool set-up a training binary starts with ([`use_calling_thread`]).

pub mod checkpoint;
pub mod fit;
pub mod optim;
pub mod threads;

pub use checkpoint::{Checkpoint, Checkpoints};
pub use fit::{fit, progress_bar, Fitted, Stage};
pub use optim::{Adam, LearningRate, Resumable, Sgd};
pub use threads::use_calling_thread;

use std::io::Write;
use std::path::{Path, PathBuf};

use dfdx::nn::{ModuleMut, TensorCollection};
use dfdx::optim::Optimizer;
use dfdx::prelude::{Cpu, Dim, Dtype, Gradients, OwnedTape, Shape, Tensor};
use dfdx::tensor_ops::Device;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::distill::{apply_step, StepError, StepOutput};
use crate::loss::{LossTerms, Term};

/// The sample order of one epoch: a permutation of `0..len` fixed by `(seed, epoch)`, so a run
/// and its resumption see the same batches.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    ));
    order
}

/// A seed for random stream `stream` of `epoch` (augmentation, dropout, ...), fixed by
/// `(seed, epoch, stream)` so that a resumed run draws what an uninterrupted one would.
pub fn epoch_seed(seed: u64, epoch: usize, stream: u64) -> u64 {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    rng.gen()
}

/// Shifts every `height × width` image of `pixels` by a random offset in `−max..=max` pixels
/// on each axis (Hinton et al.'s ±2 px jitter), filling uncovered pixels with `background`.
/// The offsets come from `rng`, so a seeded run is reproducible.
pub fn jitter(pixels: &mut [f32], height: usize, width: usize, max: i32, background: f32, rng: &mut StdRng) {
    let size = height * width;
    let mut shifted = vec![background; size];
    for image in pixels.chunks_mut(size) {
        let (dy, dx) = (rng.gen_range(-max..=max), rng.gen_range(-max..=max));
        shifted.iter_mut().for_each(|p| *p = background);
        for y in 0..height as i32 {
            let source_y = y - dy;
            if source_y < 0 || source_y >= height as i32 {
                continue;
            }
            for x in 0..width as i32 {
                let source_x = x - dx;
                if source_x >= 0 && source_x < width as i32 {
                    shifted[(y * width as i32 + x) as usize] = image[(source_y * width as i32 + source_x) as usize];
                }
            }
        }
        image.copy_from_slice(&shifted);
    }
}

/// Test-set results: error count, accuracy and the confusion matrix (`[true][predicted]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Evaluation {
    /// Misclassified samples.
    pub errors: usize,
    /// Samples evaluated.
    pub total: usize,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// Counts predictions (arg-max of each row of `logits`) against `labels`.
    pub fn new(classes: usize) -> Self {
        Evaluation {
            errors: 0,
            total: 0,
            confusion: vec![vec![0; classes]; classes],
        }
    }

    /// Adds a batch of `logits` (`labels.len() × classes`, row-major).
    pub fn add(&mut self, logits: &[f32], labels: &[usize]) {
        let classes = self.confusion.len();
        for (&predicted, &label) in crate::metrics::argmax_rows(logits, classes).iter().zip(labels) {
            self.confusion[label][predicted] += 1;
            self.total += 1;
            self.errors += usize::from(predicted != label);
        }
    }

    /// The fraction classified correctly.
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            1.0 - self.errors as f64 / self.total as f64
        }
    }
}

/// Appends one JSON object per line (per epoch) to a file, flushed after each record.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file: std::fs::File::create(path)?,
        })
    }

    /// Writes one record.
    pub fn record(&mut self, record: &serde_json::Value) -> std::io::Result<()> {
        writeln!(self.file, "{record}")?;
        self.file.flush()
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced, then
/// renamed over `path`, so a crash never leaves a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_path(path);
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written, or is damaged.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A step failed (inside an epoch; [`fit`] turns it into [`TrainError::Stopped`]).
    #[error(transparent)]
    Step(#[from] StepError),
    /// A step of a stage's first epoch failed, before any checkpoint was written.
    #[error("{stage}: {cause}; it stopped in the first epoch, so there is no checkpoint yet")]
    StoppedBeforeCheckpoint {
        /// The stage's name.
        stage: String,
        /// What went wrong.
        cause: StepError,
    },
    /// A step of a stage failed; the checkpoints before it are kept.
    #[error("{stage}: {cause}; the last good checkpoint is kept in {}", kept.display())]
    Stopped {
        /// The stage's name.
        stage: String,
        /// What went wrong.
        cause: StepError,
        /// The checkpoint folder.
        kept: PathBuf,
    },
}

impl From<std::io::Error> for TrainError {
    fn from(source: std::io::Error) -> Self {
        TrainError::Data(crate::data::DataError::Io {
            path: PathBuf::new(),
            source,
        })
    }
}

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
    let logits = model.forward_mut(crate::spatial::trace_input(input, grads));
    let loss = LossTerms::new().add("ce", 1.0, crate::loss::cross_entropy_loss(logits, targets));
    apply_step(loss, model, optimizer, step)
}

/// Sums of named terms over an epoch, weighted by batch size, for the epoch's mean. Terms of
/// weight 0 are not part of the loss and are left out.
#[derive(Debug, Clone, Default)]
pub struct TermMeans {
    sums: Vec<(&'static str, f64)>,
    samples: usize,
}

impl TermMeans {
    /// Adds one batch's terms.
    pub fn add(&mut self, terms: &[Term], batch: usize) {
        for term in terms.iter().filter(|t| t.weight != 0.0) {
            let weighted = term.value * batch as f64;
            match self.sums.iter_mut().find(|(name, _)| *name == term.name) {
                Some((_, sum)) => *sum += weighted,
                None => self.sums.push((term.name, weighted)),
            }
        }
        self.samples += batch;
    }

    /// Each term's mean over the samples added, as a JSON object.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.sums
            .iter()
            .map(|(name, sum)| (name.to_string(), serde_json::json!(sum / self.samples.max(1) as f64)))
            .collect()
    }
}

/// Saves a dfdx model as safetensors atomically (see [`write_atomically`]).
pub fn save_checkpoint<M, E>(model: &M, path: &Path) -> Result<(), crate::data::DataError>
where
    E: Dtype + dfdx::tensor::safetensors::SafeDtype,
    M: dfdx::nn::SaveToSafetensors<E, Cpu>,
    Cpu: Device<E>,
{
    let temporary = temporary_path(path);
    let io = |source: std::io::Error| crate::data::DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    model.save_safetensors(&temporary).map_err(|e| crate::data::DataError::Corrupt {
        path: temporary.clone(),
        problem: format!("could not write safetensors: {e:?}"),
    })?;
    std::fs::rename(&temporary, path).map_err(io)
}

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
    fn epochs_are_seeded_permutations() {
        let a = epoch_order(100, 7, 3);
        assert_eq!(a, epoch_order(100, 7, 3));
        assert_ne!(a, epoch_order(100, 7, 4));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn jitter_moves_pixels_within_the_bound_and_fills_the_border() {
        let mut image = vec![0.0f32; 25];
        image[12] = 1.0; // the centre of a 5×5 image
        let mut rng = StdRng::seed_from_u64(1);
        jitter(&mut image, 5, 5, 2, -1.0, &mut rng);
        let lit: Vec<usize> = image.iter().enumerate().filter(|(_, &v)| v == 1.0).map(|(i, _)| i).collect();
        assert_eq!(lit.len(), 1, "the pixel moved within the image");
        assert!(image.iter().all(|&v| v == 1.0 || v == 0.0 || v == -1.0));
    }

    #[test]
    fn evaluation_counts_errors_and_confusions() {
        let mut evaluation = Evaluation::new(3);
        evaluation.add(&[0.9, 0.1, 0.0, 0.0, 0.2, 0.8, 0.1, 0.7, 0.2], &[0, 1, 1]);
        assert_eq!((evaluation.errors, evaluation.total), (1, 3));
        assert_eq!(evaluation.confusion[1][2], 1);
        assert!((evaluation.accuracy() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("results.json");
        write_atomically(&path, b"{}").expect("write");
        write_atomically(&path, b"{\"a\": 1}").expect("overwrite");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\": 1}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn teacher_cache_returns_each_samples_logits() {
        let cache = TeacherCache::build(5, 2, 2, |indices| indices.iter().flat_map(|&i| [i as f32, -(i as f32)]).collect());
        assert_eq!(cache.gather(&[3, 0]), vec![3.0, -3.0, 0.0, -0.0]);
    }
}
