//! Why a training stopped.

use std::path::PathBuf;

use super::checkpoint::CheckpointError;
use crate::distill::StepError;
use crate::files::FileError;

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A checkpoint or an exported model could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A metrics or results file could not be written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A stage's settings cannot give a result.
    #[error("{stage}: {problem}")]
    Settings {
        /// The stage's name.
        stage: String,
        /// What is wrong.
        problem: String,
    },
    /// A loss outside a training step (an evaluation) could not be computed.
    #[error(transparent)]
    Loss(Box<crate::error::LossError>),
    /// A step failed (inside an epoch; [`run_epochs`](super::run_epochs) turns it into [`TrainError::Stopped`]).
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

impl From<crate::error::LossError> for TrainError {
    fn from(error: crate::error::LossError) -> Self {
        TrainError::Loss(Box::new(error))
    }
}
