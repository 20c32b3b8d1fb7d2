//! Per-epoch checkpoints of one training stage, complete or absent.
//!
//! Epoch `n` lives in `dir/epoch-000n/`: `model.safetensors`, `optimizer.safetensors` and
//! `progress.json` (the metrics records so far). The three files are written into
//! `epoch-000n.partial/` and the folder is renamed into place only when all are on disk, so a
//! run killed at any moment leaves the previous checkpoint whole. The newest two are kept.

use std::path::{Path, PathBuf};

use dfdx::nn::{LoadFromSafetensors, SaveToSafetensors};
use dfdx::prelude::Cpu;

use super::optim::{Resumable, StateDtype};
use crate::files::FileError;

/// The checkpoints of one training stage.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

/// One complete checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The number of epochs completed.
    pub epoch: usize,
    /// Its folder.
    pub dir: PathBuf,
}

/// A checkpoint or an exported model that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// A file exists but does not hold what it should.
    #[error("{}: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const PROGRESS: &str = "progress.json";

fn io(path: &Path, operation: &'static str) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let failed = FileError::at(path, operation);
    move |source| CheckpointError::File(failed(source))
}

impl Checkpoints {
    /// Checkpoints kept in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Checkpoints { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn epoch_dir(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:04}"))
    }

    /// Saves the state after `epoch` epochs: the model, the optimiser and `progress`.
    pub fn save<M, O, E>(
        &self,
        epoch: usize,
        model: &M,
        optimizer: &mut O,
        progress: &serde_json::Value,
    ) -> Result<Checkpoint, CheckpointError>
    where
        E: StateDtype,
        M: SaveToSafetensors<E, Cpu>,
        O: Resumable<M>,
        Cpu: dfdx::tensor_ops::Device<E>,
    {
        let finished = self.epoch_dir(epoch);
        let partial = finished.with_extension("partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(io(&partial, "delete an unfinished checkpoint"))?;
        }
        std::fs::create_dir_all(&partial).map_err(io(&partial, "create the checkpoint folder"))?;
        let model_path = partial.join(MODEL);
        model.save_safetensors(&model_path).map_err(|e| CheckpointError::Corrupt {
            path: model_path.clone(),
            problem: format!("could not write the model: {e:?}"),
        })?;
        std::fs::File::open(&model_path)
            .and_then(|f| f.sync_all())
            .map_err(io(&model_path, "sync the model"))?;
        optimizer.save_state(model, &partial.join(OPTIMIZER))?;
        let mut progress = progress.clone();
        if let Some(object) = progress.as_object_mut() {
            object.insert("checksums".into(), checksums(&partial)?);
        }
        let progress_path = partial.join(PROGRESS);
        let text = serde_json::to_string_pretty(&progress).map_err(|e| CheckpointError::Corrupt {
            path: progress_path.clone(),
            problem: e.to_string(),
        })?;
        crate::files::write_atomically(&progress_path, text.as_bytes())?;
        if finished.exists() {
            std::fs::remove_dir_all(&finished).map_err(io(&finished, "replace the checkpoint"))?;
        }
        std::fs::rename(&partial, &finished).map_err(io(&finished, "move the finished checkpoint into place"))?;
        self.prune(epoch)?;
        Ok(Checkpoint { epoch, dir: finished })
    }

    /// Deletes every checkpoint older than the one before `newest`, and any unfinished
    /// (`.partial`) folder: what a kill during an earlier deletion or save left behind.
    pub fn prune(&self, newest: usize) -> Result<(), CheckpointError> {
        for old in self.complete()?.into_iter().filter(|c| c.epoch + 1 < newest) {
            std::fs::remove_dir_all(&old.dir).map_err(io(&old.dir, "delete an old checkpoint"))?;
        }
        for entry in self.entries()? {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "partial") {
                std::fs::remove_dir_all(&path).map_err(io(&path, "delete an unfinished checkpoint"))?;
            }
        }
        Ok(())
    }

    fn entries(&self) -> Result<Vec<std::fs::DirEntry>, CheckpointError> {
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries.collect::<Result<_, _>>().map_err(io(&self.dir, "list the checkpoints")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&self.dir, "list the checkpoints")(e)),
        }
    }

    /// Every complete checkpoint, oldest first.
    fn complete(&self) -> Result<Vec<Checkpoint>, CheckpointError> {
        let mut found = Vec::new();
        for entry in self.entries()? {
            let name = entry.file_name();
            let epoch = name.to_str().and_then(|n| n.strip_prefix("epoch-")).and_then(|n| n.parse().ok());
            if let Some(epoch) = epoch {
                found.push(Checkpoint { epoch, dir: entry.path() });
            }
        }
        found.sort_by_key(|c| c.epoch);
        Ok(found)
    }

    /// The newest complete checkpoint, if any.
    pub fn latest(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(self.complete()?.pop())
    }

    /// Restores the newest checkpoint that is whole. A damaged one (a file whose md5 differs
    /// from the one recorded when it was written, a progress record without its epochs' records,
    /// a file that does not load) is passed over for the one before it, and said so in
    /// [`Restored::passed_over`]. `None` when there is no checkpoint; the newest one's error
    /// when none is whole.
    pub fn restore_latest<M, O, E>(&self, model: &mut M, optimizer: &mut O) -> Result<Option<Restored>, CheckpointError>
    where
        E: StateDtype,
        M: LoadFromSafetensors<E, Cpu>,
        O: Resumable<M>,
        Cpu: dfdx::tensor_ops::Device<E>,
    {
        let mut passed_over = Vec::new();
        let mut first_error = None;
        for checkpoint in self.complete()?.into_iter().rev() {
            match self.restore(&checkpoint, model, optimizer) {
                Ok(progress) => {
                    return Ok(Some(Restored {
                        checkpoint,
                        progress,
                        passed_over,
                    }))
                }
                Err(error) => {
                    passed_over.push(format!("{}: {error}", checkpoint.dir.display()));
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(None),
        }
    }

    /// Loads `checkpoint` into `model` and `optimizer` after checking its files against the
    /// md5 sums recorded in its progress; returns its progress record, which must hold one
    /// record per epoch.
    pub fn restore<M, O, E>(&self, checkpoint: &Checkpoint, model: &mut M, optimizer: &mut O) -> Result<serde_json::Value, CheckpointError>
    where
        E: StateDtype,
        M: LoadFromSafetensors<E, Cpu>,
        O: Resumable<M>,
        Cpu: dfdx::tensor_ops::Device<E>,
    {
        let progress_path = checkpoint.dir.join(PROGRESS);
        let text = std::fs::read_to_string(&progress_path).map_err(io(&progress_path, "read the progress record"))?;
        let progress: serde_json::Value = serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
            path: progress_path.clone(),
            problem: format!("not JSON: {e}"),
        })?;
        let records = progress["records"].as_array().map_or(0, Vec::len);
        if records != checkpoint.epoch {
            return Err(CheckpointError::Corrupt {
                path: progress_path,
                problem: format!("holds {records} epoch records for a checkpoint after epoch {}", checkpoint.epoch),
            });
        }
        let recorded = progress["checksums"].as_object().cloned().unwrap_or_default();
        for (name, expected) in &recorded {
            let path = checkpoint.dir.join(name);
            let found = md5_of(&path)?;
            if Some(found.as_str()) != expected.as_str() {
                return Err(CheckpointError::Corrupt {
                    path,
                    problem: format!("md5 {found} differs from the {expected} recorded when it was written"),
                });
            }
        }
        let model_path = checkpoint.dir.join(MODEL);
        model.load_safetensors(&model_path).map_err(|e| CheckpointError::Corrupt {
            path: model_path.clone(),
            problem: format!("not a checkpoint of this model: {e:?}"),
        })?;
        optimizer.load_state(model, &checkpoint.dir.join(OPTIMIZER))?;
        Ok(progress)
    }
}

/// What [`Checkpoints::restore_latest`] restored.
#[derive(Debug)]
pub struct Restored {
    /// The checkpoint loaded.
    pub checkpoint: Checkpoint,
    /// Its progress record.
    pub progress: serde_json::Value,
    /// Newer checkpoints that were damaged, each with what was wrong.
    pub passed_over: Vec<String>,
}

/// The md5 of `bytes`, as lowercase hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The md5 of a file, as lowercase hex.
fn md5_of(path: &Path) -> Result<String, CheckpointError> {
    let bytes = std::fs::read(path).map_err(io(path, "read"))?;
    Ok(md5_hex(&bytes))
}

/// The md5 of every file in a checkpoint folder being written.
fn checksums(dir: &Path) -> Result<serde_json::Value, CheckpointError> {
    let mut sums = serde_json::Map::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir, "list the checkpoint's files"))?
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .filter_map(|name| name.to_str().map(str::to_string))
        .filter(|name| name != PROGRESS)
        .collect();
    names.sort();
    for name in names {
        sums.insert(name.clone(), md5_of(&dir.join(&name))?.into());
    }
    Ok(serde_json::Value::Object(sums))
}

/// Saves a dfdx model as safetensors atomically (see [`crate::files`]): the stage's exported
/// model.
pub fn save_checkpoint<M, E>(model: &M, path: &Path) -> Result<(), CheckpointError>
where
    E: dfdx::prelude::Dtype + dfdx::tensor::safetensors::SafeDtype,
    M: SaveToSafetensors<E, Cpu>,
    Cpu: dfdx::tensor_ops::Device<E>,
{
    let temporary = crate::files::temporary_path(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent, "create the folder"))?;
    }
    model.save_safetensors(&temporary).map_err(|e| CheckpointError::Corrupt {
        path: temporary.clone(),
        problem: format!("could not write safetensors: {e:?}"),
    })?;
    std::fs::File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(io(&temporary, "sync the model"))?;
    std::fs::rename(&temporary, path).map_err(io(path, "replace the model"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::optim::Sgd;
    use dfdx::prelude::*;

    #[test]
    fn keeps_the_newest_two_and_restores_the_latest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let checkpoints = Checkpoints::new(dir.path().join("stage"));
        assert_eq!(checkpoints.latest().expect("empty"), None);
        let dev = Cpu::seed_from_u64(1);
        let model = dev.build_module::<Linear<3, 2>, f32>();
        let mut sgd = Sgd::new(SgdConfig::default());
        for epoch in 1..=4 {
            let records: Vec<usize> = (1..=epoch).collect();
            checkpoints
                .save(epoch, &model, &mut sgd, &serde_json::json!({ "epoch": epoch, "records": records }))
                .expect("save");
        }
        // A run killed while writing epoch 5 leaves a partial folder, which is ignored.
        std::fs::create_dir_all(dir.path().join("stage/epoch-0005.partial")).expect("partial");
        let latest = checkpoints.latest().expect("list").expect("a checkpoint");
        assert_eq!(latest.epoch, 4);
        assert_eq!(checkpoints.complete().expect("list").len(), 2);

        let mut restored = Cpu::seed_from_u64(2).build_module::<Linear<3, 2>, f32>();
        assert_ne!(restored.weight.as_vec(), model.weight.as_vec());
        let progress = checkpoints.restore(&latest, &mut restored, &mut sgd).expect("restore");
        assert_eq!(progress["epoch"], 4);
        assert_eq!(restored.weight.as_vec(), model.weight.as_vec());
    }

    #[test]
    fn a_damaged_checkpoint_names_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let checkpoints = Checkpoints::new(dir.path());
        let dev = Cpu::default();
        let mut model = dev.build_module::<Linear<3, 2>, f32>();
        let mut sgd = Sgd::new(SgdConfig::default());
        let saved = checkpoints
            .save(1, &model, &mut sgd, &serde_json::json!({ "records": [1] }))
            .expect("save");
        std::fs::write(saved.dir.join(PROGRESS), "{ truncated").expect("damage");
        let message = checkpoints.restore(&saved, &mut model, &mut sgd).expect_err("damaged").to_string();
        assert!(message.contains("progress.json") && message.contains("not JSON"), "{message}");
    }

    /// A flipped byte in the newest checkpoint's weights is caught by its md5; the one before
    /// is restored instead, and the damaged one is named. An empty progress record is refused.
    #[test]
    fn a_damaged_checkpoint_falls_back_to_the_previous_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let checkpoints = Checkpoints::new(dir.path());
        let dev = Cpu::seed_from_u64(1);
        let mut model = dev.build_module::<Linear<3, 2>, f32>();
        let mut sgd = Sgd::new(SgdConfig::default());
        let first = model.weight.as_vec();
        checkpoints
            .save(1, &model, &mut sgd, &serde_json::json!({ "records": [1] }))
            .expect("save");
        model.weight = dev.sample_normal();
        let newest = checkpoints
            .save(2, &model, &mut sgd, &serde_json::json!({ "records": [1, 2] }))
            .expect("save");
        let weights = newest.dir.join(MODEL);
        let mut bytes = std::fs::read(&weights).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&weights, bytes).expect("damage");

        let restored = checkpoints
            .restore_latest(&mut model, &mut sgd)
            .expect("restore")
            .expect("a checkpoint");
        assert_eq!(restored.checkpoint.epoch, 1);
        assert_eq!(model.weight.as_vec(), first);
        assert_eq!(restored.passed_over.len(), 1);
        assert!(
            restored.passed_over[0].contains("model.safetensors") && restored.passed_over[0].contains("md5"),
            "{:?}",
            restored.passed_over
        );

        std::fs::write(restored.checkpoint.dir.join(PROGRESS), "{}").expect("empty the record");
        let error = checkpoints
            .restore_latest(&mut model, &mut sgd)
            .expect_err("nothing whole is left")
            .to_string();
        assert!(error.contains("epoch-0002") && error.contains("md5"), "{error}");
        let error = checkpoints
            .restore(&restored.checkpoint, &mut model, &mut sgd)
            .expect_err("an empty record")
            .to_string();
        assert!(error.contains("progress.json") && error.contains("0 epoch records"), "{error}");
    }
}
