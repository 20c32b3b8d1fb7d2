//! The epoch loop every `kd` training shares: resume from the newest checkpoint, a progress
//! bar with rate and ETA, one metrics record per epoch, a checkpoint after every epoch, and a
//! stop that names the bad loss term and step while keeping the last good checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::nn::{LoadFromSafetensors, SaveToSafetensors};
use dfdx::prelude::Cpu;
use indicatif::{ProgressBar, ProgressStyle};

use super::checkpoint::Checkpoints;
use super::optim::{Resumable, StateDtype};
use super::{save_checkpoint, MetricsLog, TrainError};

/// One training stage (one model trained for some epochs).
#[derive(Debug, Clone)]
pub struct Stage<'a> {
    /// The stage's name: metrics go to `out/NAME.metrics.jsonl`, the final model to
    /// `out/NAME.safetensors`, checkpoints to `out/checkpoints/NAME/`.
    pub name: &'a str,
    /// The output folder.
    pub out: &'a Path,
    /// Epochs to train in all (a resumed stage trains the rest).
    pub epochs: usize,
    /// Optimiser steps per epoch (for the progress bar).
    pub steps_per_epoch: usize,
    /// Continue from the newest checkpoint instead of starting over.
    pub resume: bool,
}

/// What a stage produced.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// One record per epoch: the fields the epoch returned plus `model`, `epoch` and `seconds`.
    pub records: Vec<serde_json::Value>,
    /// Training time in all, including the time before a resume.
    pub seconds: f64,
    /// The epochs that were already done when this run started (0 unless resumed).
    pub resumed_after: usize,
}

impl Fitted {
    /// The last epoch's value of `key`.
    pub fn last(&self, key: &str) -> Option<&serde_json::Value> {
        self.records.last().and_then(|r| r.get(key))
    }

    /// One `(epoch, value)` point per epoch that has a numeric `key`.
    pub fn curve(&self, key: &str) -> Vec<(f64, f64)> {
        self.records
            .iter()
            .filter_map(|r| Some((r["epoch"].as_f64()?, r[key].as_f64()?)))
            .collect()
    }
}

impl Stage<'_> {
    /// Where this stage's checkpoints are.
    pub fn checkpoints(&self) -> Checkpoints {
        Checkpoints::new(self.out.join("checkpoints").join(self.name))
    }

    /// The final model's file.
    pub fn model_path(&self) -> PathBuf {
        self.out.join(format!("{}.safetensors", self.name))
    }
}

/// A progress bar over `total` steps with rate and ETA; hidden when stderr is not a terminal.
pub fn progress_bar(total: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} steps, {per_sec}, ETA {eta} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}

/// Trains `model` for the stage's epochs with `train_epoch(epoch, model, optimizer, bar)`,
/// which runs one epoch (0-based), advances `bar` per step and returns the epoch's metrics.
///
/// After each epoch the record is logged and a checkpoint written. With `stage.resume`, the
/// newest checkpoint is loaded first and only the remaining epochs run; `train_epoch` must then
/// depend on nothing but the epoch index, the model and the optimiser (seed shuffling and
/// augmentation per epoch) for the result to equal an uninterrupted run.
pub fn fit<M, O, E>(
    stage: &Stage<'_>,
    model: &mut M,
    optimizer: &mut O,
    mut train_epoch: impl FnMut(usize, &mut M, &mut O, &ProgressBar) -> Result<serde_json::Map<String, serde_json::Value>, TrainError>,
) -> Result<Fitted, TrainError>
where
    E: StateDtype,
    M: SaveToSafetensors<E, Cpu> + LoadFromSafetensors<E, Cpu>,
    O: Resumable<M>,
    Cpu: dfdx::tensor_ops::Device<E>,
{
    let started = Instant::now();
    let checkpoints = stage.checkpoints();
    let mut records = Vec::new();
    let mut seconds_before = 0.0;
    let mut resumed_after = 0;
    if stage.resume {
        if let Some(latest) = checkpoints.latest()? {
            let progress = checkpoints.restore(&latest, model, optimizer)?;
            records = progress["records"].as_array().cloned().unwrap_or_default();
            seconds_before = progress["seconds"].as_f64().unwrap_or(0.0);
            resumed_after = latest.epoch.min(stage.epochs);
        }
    } else if checkpoints.dir().exists() {
        std::fs::remove_dir_all(checkpoints.dir()).map_err(|source| crate::data::DataError::Io {
            path: checkpoints.dir().to_path_buf(),
            source,
        })?;
    }
    let mut log = MetricsLog::create(&stage.out.join(format!("{}.metrics.jsonl", stage.name)))?;
    for record in &records {
        log.record(record)?;
    }
    let bar = progress_bar(stage.epochs * stage.steps_per_epoch, stage.name);
    bar.set_position((resumed_after * stage.steps_per_epoch) as u64);
    let seconds = |started: &Instant| seconds_before + started.elapsed().as_secs_f64();
    for epoch in resumed_after..stage.epochs {
        let fields = train_epoch(epoch, model, optimizer, &bar).map_err(|error| match error {
            TrainError::Step(cause) if epoch == 0 => TrainError::StoppedBeforeCheckpoint {
                stage: stage.name.to_string(),
                cause,
            },
            TrainError::Step(cause) => TrainError::Stopped {
                stage: stage.name.to_string(),
                cause,
                kept: checkpoints.dir().to_path_buf(),
            },
            other => other,
        })?;
        let mut record = serde_json::json!({ "model": stage.name, "epoch": epoch + 1 });
        if let Some(object) = record.as_object_mut() {
            object.extend(fields);
            object.insert("seconds".into(), serde_json::json!(seconds(&started)));
        }
        if let Some(errors) = record.get("test_errors") {
            bar.set_message(format!("epoch {} test errors {errors}", epoch + 1));
        }
        log.record(&record)?;
        records.push(record);
        let progress = serde_json::json!({ "records": records, "seconds": seconds(&started) });
        checkpoints.save(epoch + 1, model, optimizer, &progress)?;
        save_checkpoint(model, &stage.model_path())?;
    }
    bar.finish_and_clear();
    Ok(Fitted {
        records,
        seconds: seconds(&started),
        resumed_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{supervised_step, Sgd};
    use dfdx::nn::ZeroGrads;
    use dfdx::prelude::*;

    /// Epoch 1 trains; epoch 2 meets a NaN input. The error names the term and the step, and
    /// epoch 1's checkpoint and model file are kept.
    #[test]
    fn a_nan_stops_the_stage_and_keeps_the_last_good_checkpoint() {
        let out = tempfile::tempdir().expect("tempdir");
        let stage = Stage {
            name: "toy",
            out: out.path(),
            epochs: 3,
            steps_per_epoch: 2,
            resume: false,
        };
        let dev = Cpu::seed_from_u64(0);
        let mut model = dev.build_module::<Linear<2, 3>, f32>();
        let mut grads = model.alloc_grads();
        let mut sgd = Sgd::new(SgdConfig::default());
        let error = fit(&stage, &mut model, &mut sgd, |epoch, model, optimizer, _| {
            for step in 0..2 {
                let value = if epoch == 1 && step == 1 { f32::NAN } else { 0.5 };
                let x: Tensor<(usize, Const<2>), f32, Cpu> = dev.tensor_from_vec(vec![value, 1.0], (1, Const));
                let step = epoch * 2 + step;
                let (_, next) = supervised_step(model, optimizer, x, &[2], std::mem::replace(&mut grads, Gradients::leaky()), step)?;
                grads = next;
            }
            Ok(Default::default())
        })
        .expect_err("a NaN stops the stage");
        let message = error.to_string();
        assert!(
            message.contains("toy") && message.contains("`ce`") && message.contains("step 3") && message.contains("last good checkpoint"),
            "{message}"
        );
        let kept = stage.checkpoints().latest().expect("list").expect("epoch 1 kept");
        assert_eq!(kept.epoch, 1);
        assert!(stage.model_path().is_file());
        let log = std::fs::read_to_string(out.path().join("toy.metrics.jsonl")).expect("log");
        assert_eq!(log.lines().count(), 1);
    }
}
