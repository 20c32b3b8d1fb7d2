//! The training engine, one job per file:
//!
//! | file | job |
//! |---|---|
//! | [`epochs`] | the epoch runner every training shares ([`run_epochs`]): seeded order and random streams, batches, progress, records, checkpoints, resume, the stop on a non-finite term |
//! | [`step`] | the supervised step ([`supervised_step`]) |
//! | [`metrics`] | [`Evaluation`] with a confusion matrix, [`TermMeans`], the JSON-lines [`MetricsLog`] |
//! | [`checkpoint`] | atomic per-epoch checkpoints and the exported model |
//! | [`optim`] | SGD and Adam whose state is saved and restored exactly |
//! | [`cache`] | the teacher-output cache ([`TeacherCache`]) |
//! | [`augment`] | Hinton et al.'s ±2 px [`jitter`], Simard et al.'s affine and elastic [`distort`]ion ([`Augmentation`]) |
//! | [`constraint`] | the dropout papers' [`max_norm`] constraint and [`momentum_ramp`] |
//! | [`schedule`] | the temperature, loss weights or learning rate over epochs ([`Schedule`], [`KdSchedule`]) |
//! | [`store`] | the offline teacher-logit store: exact or top-k, sharded, resumable, memory-mapped ([`LogitStore`]) |
//! | [`folder`] | a run's output folder: the lock, the manifest, no silent overwrite |
//! | [`threads`] | the thread pool a training binary starts with ([`use_calling_thread`]) |

pub mod augment;
pub mod cache;
pub mod checkpoint;
pub mod constraint;
pub mod epochs;
mod error;
pub mod folder;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod step;
pub mod store;
pub mod threads;

pub use augment::{distort, jitter, Augmentation, Distortion};
pub use cache::TeacherCache;
pub use checkpoint::{md5_hex, save_checkpoint, Checkpoint, CheckpointError, Checkpoints, Restored};
pub use constraint::{max_norm, momentum_ramp};
pub use epochs::{epoch_order, epoch_seed, progress_bar, run_epochs, Batch, Epoch, Fitted, Guard, Record, Stage};
pub use error::TrainError;
pub use folder::{FolderError, RunFolder, Start};
pub use metrics::{Evaluation, MetricsLog, TermMeans};
pub use optim::{Adam, LearningRate, Resumable, Sgd};
pub use schedule::{KdSchedule, Schedule};
pub use step::supervised_step;
pub use store::{LogitStore, Shard, StoreError, StoreHeader, StoreWriter};
pub use threads::use_calling_thread;

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
}
