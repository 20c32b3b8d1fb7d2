//! The epoch runner every training in kd shares: it shuffles, batches, calls the caller's
//! step, evaluates, records metrics, checkpoints, resumes, stops on a non-finite loss term and
//! shows progress.
//!
//! A stage is one model trained for some epochs ([`Stage`]). [`run_epochs`] resumes from the
//! stage's newest checkpoint when asked, then for each remaining epoch: sets the learning rate
//! of the schedule, draws the epoch's sample order and random streams from `(seed, epoch)`
//! ([`Epoch`]), calls the step closure once per batch, checks every returned term is finite,
//! calls the evaluation closure, appends the epoch's record to `NAME.metrics.jsonl`, writes a
//! checkpoint and exports the model. Because everything random is fixed by `(seed, epoch)`, a
//! resumed stage ends byte-identical to an uninterrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::nn::{LoadFromSafetensors, SaveToSafetensors, TensorCollection, ZeroGrads};
use dfdx::prelude::{Cpu, Gradients};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::checkpoint::{save_checkpoint, Checkpoints};
use super::metrics::{MetricsLog, TermMeans};
use super::optim::{LearningRate, Resumable, StateDtype};
use super::TrainError;
use crate::distill::{StepError, StepOutput};
use crate::files::FileError;

/// An epoch's record: the fields the evaluation returns, beside the term means and `lr`.
pub type Record = serde_json::Map<String, serde_json::Value>;

/// One training stage: one model (or a group trained together) for some epochs.
#[derive(Clone, Copy)]
pub struct Stage<'a> {
    /// The stage's name: metrics go to `out/NAME.metrics.jsonl`, the final model to
    /// `out/NAME.safetensors`, checkpoints to `out/checkpoints/NAME/`.
    pub name: &'a str,
    /// The output folder.
    pub out: &'a Path,
    /// Epochs to train in all (a resumed stage trains the rest).
    pub epochs: usize,
    /// Continue from the newest checkpoint instead of starting over.
    pub resume: bool,
    /// Training samples per epoch: each epoch visits a permutation of `0..samples`.
    pub samples: usize,
    /// Samples per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Fixes the sample order and the random streams of every epoch.
    pub seed: u64,
    /// The learning rate of each epoch (0-based), set before the epoch and recorded as `lr`;
    /// `None` leaves the optimiser's.
    pub learning_rate: Option<&'a dyn Fn(usize) -> f64>,
    /// When a finite loss term counts as diverged.
    pub guard: Guard,
}

/// The divergence guard: a finite loss term that runs away stops the stage as a NaN does,
/// naming the term and the step, before anything of that epoch is saved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// A term whose magnitude exceeds this has diverged.
    pub max_value: f64,
    /// A term above this many times its running median over the last [`Guard::WINDOW`] steps
    /// (a median below 0.01 counts as 0.01) has diverged.
    pub max_growth: f64,
}

impl Guard {
    /// Steps in the running median.
    pub const WINDOW: usize = 64;
}

impl Default for Guard {
    /// 10⁶, and 10⁴ times the running median: far above any loss of a healthy training here.
    fn default() -> Self {
        Guard {
            max_value: 1e6,
            max_growth: 1e4,
        }
    }
}

/// Each term's recent values, for the growth limit of a [`Guard`].
#[derive(Default)]
struct History {
    recent: Vec<(&'static str, std::collections::VecDeque<f64>)>,
}

impl History {
    /// Checks `terms` against `guard` and remembers them.
    fn check(&mut self, guard: &Guard, terms: &[crate::loss::Term], step: usize) -> Result<(), StepError> {
        for term in terms {
            let diverged = |reason: String| StepError::Diverged {
                term: term.name,
                value: term.value,
                step,
                reason,
            };
            if !term.value.is_finite() {
                return Err(StepError::NonFinite {
                    term: term.name,
                    value: term.value,
                    step,
                });
            }
            if term.value.abs() > guard.max_value {
                return Err(diverged(format!("is above the bound {:e}", guard.max_value)));
            }
            let index = match self.recent.iter().position(|(name, _)| *name == term.name) {
                Some(index) => index,
                None => {
                    self.recent
                        .push((term.name, std::collections::VecDeque::with_capacity(Guard::WINDOW)));
                    self.recent.len() - 1
                }
            };
            let values = &mut self.recent[index].1;
            if values.len() >= Guard::WINDOW / 4 {
                let mut sorted: Vec<f64> = values.iter().map(|v| v.abs()).collect();
                sorted.sort_by(f64::total_cmp);
                let median = sorted[sorted.len() / 2].max(1e-2);
                if term.value.abs() > guard.max_growth * median {
                    return Err(diverged(format!(
                        "is {:.0}× its running median {median:.3e}",
                        term.value.abs() / median
                    )));
                }
            }
            if values.len() == Guard::WINDOW {
                values.pop_front();
            }
            values.push_back(term.value);
        }
        Ok(())
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

    /// Optimiser steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.samples.div_ceil(self.batch_size.max(1))
    }
}

/// One epoch's index and random streams, fixed by `(seed, epoch)` so that a resumed run draws
/// what an uninterrupted one would.
pub struct Epoch {
    /// The epoch, 0-based.
    pub index: usize,
    /// A device seeded for this epoch (stream 1): tensors built on it draw dropout masks and
    /// samples from it.
    pub dev: Cpu,
    /// A generator seeded for this epoch (stream 2): augmentation and other draws.
    pub rng: StdRng,
}

impl Epoch {
    /// The epoch `index` of a stage seeded with `seed`.
    pub fn new(seed: u64, index: usize) -> Self {
        Epoch {
            index,
            dev: Cpu::seed_from_u64(epoch_seed(seed, index, 1)),
            rng: StdRng::seed_from_u64(epoch_seed(seed, index, 2)),
        }
    }
}

/// One step's batch: the sample indices and the step's number over the whole stage.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The samples of this batch.
    pub indices: &'a [usize],
    /// The step's number, counted from the stage's first step (named in errors).
    pub step: usize,
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

/// Trains `model` for the stage's epochs (see the module doc).
///
/// `step(epoch, batch, model, optimizer, grads)` makes one optimiser step and returns its
/// terms and the gradient buffers for the next step ([`crate::distill::apply_step`] does the
/// end of a step). `evaluate(model, epoch)` returns the fields the epoch's record adds to the
/// term means (test errors, for example). With `stage.resume` the newest checkpoint is loaded
/// first and only the remaining epochs run; for the result to equal an uninterrupted run, the
/// closures must draw randomness only from [`Epoch`] and [`Batch`].
pub fn run_epochs<M, O, E>(
    stage: &Stage<'_>,
    model: &mut M,
    optimizer: &mut O,
    mut step: impl FnMut(&mut Epoch, Batch<'_>, &mut M, &mut O, Gradients<E, Cpu>) -> Result<StepOutput<E>, StepError>,
    mut evaluate: impl FnMut(&M, &Epoch) -> Result<Record, TrainError>,
) -> Result<Fitted, TrainError>
where
    E: StateDtype,
    M: SaveToSafetensors<E, Cpu> + LoadFromSafetensors<E, Cpu> + TensorCollection<E, Cpu>,
    O: Resumable<M> + LearningRate,
    Cpu: dfdx::tensor_ops::Device<E>,
{
    let started = Instant::now();
    let refuse = |problem: &str| TrainError::Settings {
        stage: stage.name.to_string(),
        problem: problem.to_string(),
    };
    if stage.epochs == 0 {
        return Err(refuse("0 epochs train nothing; give at least 1"));
    }
    if stage.samples == 0 || stage.batch_size == 0 {
        return Err(refuse(&format!(
            "{} training samples in batches of {} make no step; give at least one sample",
            stage.samples, stage.batch_size
        )));
    }
    let checkpoints = stage.checkpoints();
    let mut records = Vec::new();
    let mut seconds_before = 0.0;
    let mut resumed_after = 0;
    if stage.resume {
        if let Some(restored) = checkpoints.restore_latest(model, optimizer)? {
            for damaged in &restored.passed_over {
                eprintln!("{}: passed over a damaged checkpoint: {damaged}", stage.name);
            }
            records = restored.progress["records"].as_array().cloned().unwrap_or_default();
            seconds_before = restored.progress["seconds"].as_f64().unwrap_or(0.0);
            resumed_after = restored.checkpoint.epoch.min(stage.epochs);
        }
    } else if checkpoints.dir().exists() {
        std::fs::remove_dir_all(checkpoints.dir()).map_err(FileError::at(checkpoints.dir(), "delete the old checkpoints"))?;
    }
    let log_path = stage.out.join(format!("{}.metrics.jsonl", stage.name));
    let io = |operation| FileError::at(&log_path, operation);
    let mut log = MetricsLog::create(&log_path).map_err(io("create the metrics log"))?;
    for record in &records {
        log.record(record).map_err(io("write the metrics log"))?;
    }
    let steps_per_epoch = stage.steps_per_epoch();
    let bar = progress_bar(stage.epochs * steps_per_epoch, stage.name);
    bar.set_position((resumed_after * steps_per_epoch) as u64);
    let seconds = |started: &Instant| seconds_before + started.elapsed().as_secs_f64();
    let mut grads = model.alloc_grads();
    let mut history = History::default();
    let stopped = |cause: StepError, epoch: usize| {
        if epoch == 0 {
            TrainError::StoppedBeforeCheckpoint {
                stage: stage.name.to_string(),
                cause,
            }
        } else {
            TrainError::Stopped {
                stage: stage.name.to_string(),
                cause,
                kept: checkpoints.dir().to_path_buf(),
            }
        }
    };
    for index in resumed_after..stage.epochs {
        let learning_rate = stage.learning_rate.map(|schedule| schedule(index));
        if let Some(rate) = learning_rate {
            optimizer.set_learning_rate(rate);
        }
        let mut epoch = Epoch::new(stage.seed, index);
        let mut means = TermMeans::default();
        for (position, indices) in epoch_order(stage.samples, stage.seed, index)
            .chunks(stage.batch_size.max(1))
            .enumerate()
        {
            let batch = Batch {
                indices,
                step: index * steps_per_epoch + position,
            };
            let (terms, next) = step(&mut epoch, batch, model, optimizer, grads).map_err(|cause| stopped(cause, index))?;
            history
                .check(&stage.guard, &terms, batch.step)
                .map_err(|cause| stopped(cause, index))?;
            grads = next;
            means.add(&terms, indices.len());
            bar.inc(1);
        }
        let mut record = serde_json::json!({ "model": stage.name, "epoch": index + 1 });
        if let Some(object) = record.as_object_mut() {
            object.extend(means.to_json());
            if let Some(rate) = learning_rate {
                object.insert("lr".into(), serde_json::json!(rate));
            }
            object.extend(evaluate(model, &epoch).map_err(|error| match error {
                TrainError::Step(cause) => stopped(cause, index),
                other => other,
            })?);
            object.insert("seconds".into(), serde_json::json!(seconds(&started)));
        }
        if let Some(errors) = record.get("test_errors") {
            bar.set_message(format!("epoch {} test errors {errors}", index + 1));
        }
        log.record(&record).map_err(io("write the metrics log"))?;
        records.push(record);
        let progress = serde_json::json!({ "records": records, "seconds": seconds(&started) });
        checkpoints.save(index + 1, model, optimizer, &progress)?;
        crash_point(stage.name, "checkpointed", index + 1);
        save_checkpoint(model, &stage.model_path())?;
        crash_point(stage.name, "exported", index + 1);
    }
    // The export matches the last checkpoint even when a run was killed between the two, or
    // resumed with no epoch left; and a kill while old checkpoints were being deleted leaves
    // none half-deleted.
    if resumed_after == stage.epochs {
        save_checkpoint(model, &stage.model_path())?;
    }
    checkpoints.prune(stage.epochs)?;
    bar.finish_and_clear();
    Ok(Fitted {
        records,
        seconds: seconds(&started),
        resumed_after,
    })
}

/// Fault injection for the kill tests: with `KD_CRASH_AT=STAGE:POINT:EPOCH` set, the process
/// aborts there (no destructor runs and nothing is flushed, as under `kill -9`). The points are
/// `checkpointed` (the epoch's checkpoint is in place, the export not yet written) and
/// `exported`.
fn crash_point(stage: &str, point: &str, epoch: usize) {
    if let Some(at) = std::env::var_os("KD_CRASH_AT") {
        if at.to_str() == Some(format!("{stage}:{point}:{epoch}").as_str()) {
            eprintln!("KD_CRASH_AT={stage}:{point}:{epoch}: aborting");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Term;
    use crate::train::{supervised_step, Sgd};
    use dfdx::prelude::*;

    fn toy_stage(out: &Path, epochs: usize, resume: bool) -> Stage<'_> {
        Stage {
            name: "toy",
            out,
            epochs,
            resume,
            samples: 4,
            batch_size: 2,
            seed: 9,
            learning_rate: Some(&|epoch| 0.1 / (1.0 + epoch as f64)),
            guard: Guard::default(),
        }
    }

    /// Trains a 2→3 linear model on a fixed 4-sample set; `nan_at` poisons one step's input.
    fn train_toy(stage: &Stage<'_>, nan_at: Option<usize>) -> Result<(Fitted, Vec<f32>), TrainError> {
        let dev = Cpu::seed_from_u64(0);
        let mut model = dev.build_module::<Linear<2, 3>, f32>();
        let mut sgd = Sgd::new(SgdConfig::default());
        let inputs = [[0.5f32, 1.0], [-1.0, 0.2], [0.3, -0.7], [1.5, 0.1]];
        let fitted = run_epochs(
            stage,
            &mut model,
            &mut sgd,
            |epoch, batch, model, optimizer, grads| {
                let mut values: Vec<f32> = batch.indices.iter().flat_map(|&i| inputs[i]).collect();
                if nan_at == Some(batch.step) {
                    values[0] = f32::NAN;
                }
                let x: Tensor<(usize, Const<2>), f32, Cpu> = epoch.dev.tensor_from_vec(values, (batch.indices.len(), Const));
                let labels: Vec<usize> = batch.indices.iter().map(|&i| i % 3).collect();
                supervised_step(model, optimizer, x, &labels, grads, batch.step)
            },
            |_, _| Ok(Record::new()),
        )?;
        Ok((fitted, model.weight.as_vec()))
    }

    /// Epoch 1 trains; epoch 2 meets a NaN input. The error names the term and the step, and
    /// epoch 1's checkpoint and model file are kept.
    #[test]
    fn a_nan_stops_the_stage_and_keeps_the_last_good_checkpoint() {
        let out = tempfile::tempdir().expect("tempdir");
        let stage = toy_stage(out.path(), 3, false);
        let error = train_toy(&stage, Some(3)).expect_err("a NaN stops the stage");
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

    /// The runner itself refuses a non-finite term that a step reports without its own guard.
    #[test]
    fn the_runner_checks_every_term() {
        let out = tempfile::tempdir().expect("tempdir");
        let stage = toy_stage(out.path(), 2, false);
        let mut model = Cpu::default().build_module::<Linear<2, 3>, f32>();
        let error = run_epochs(
            &stage,
            &mut model,
            &mut Sgd::new(SgdConfig::default()),
            |_, batch, _, _, grads| {
                let value = if batch.step == 1 { f64::INFINITY } else { 1.0 };
                Ok((
                    vec![Term {
                        name: "custom",
                        value,
                        weight: 1.0,
                    }],
                    grads,
                ))
            },
            |_, _| Ok(Record::new()),
        )
        .expect_err("an infinite term stops the stage");
        let message = error.to_string();
        assert!(
            message.contains("`custom`") && message.contains("step 1") && message.contains("no checkpoint yet"),
            "{message}"
        );
    }

    /// Two epochs, then a resumed third, end where three uninterrupted epochs end; every epoch
    /// records the scheduled learning rate.
    #[test]
    fn a_resumed_stage_ends_where_an_uninterrupted_one_does() {
        let (whole, interrupted) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let (fitted, uninterrupted) = train_toy(&toy_stage(whole.path(), 3, false), None).expect("trains");
        train_toy(&toy_stage(interrupted.path(), 2, false), None).expect("trains");
        let (resumed, weights) = train_toy(&toy_stage(interrupted.path(), 3, true), None).expect("resumes");
        assert_eq!(resumed.resumed_after, 2);
        assert_eq!(weights, uninterrupted);
        assert_eq!(resumed.records.len(), 3);
        let rates: Vec<f64> = fitted.curve("lr").into_iter().map(|(_, lr)| lr).collect();
        assert_eq!(rates, [0.1, 0.05, 0.1 / 3.0]);
        assert_ne!(
            train_toy(&toy_stage(whole.path(), 1, false), None).expect("trains").1,
            uninterrupted
        );
    }

    /// Zero epochs or zero samples are refused before anything is written.
    #[test]
    fn settings_that_train_nothing_are_refused() {
        let out = tempfile::tempdir().expect("tempdir");
        let error = train_toy(&toy_stage(out.path(), 0, false), None).expect_err("0 epochs").to_string();
        assert!(error.contains("toy") && error.contains("0 epochs"), "{error}");
        let mut stage = toy_stage(out.path(), 2, false);
        stage.samples = 0;
        let error = train_toy(&stage, None).expect_err("no samples").to_string();
        assert!(error.contains("0 training samples"), "{error}");
        assert_eq!(std::fs::read_dir(out.path()).expect("list").count(), 0, "nothing written");
    }

    /// A run killed after its last checkpoint but before the export (here: the export holds
    /// an earlier epoch's weights) gets the right export back on resume.
    #[test]
    fn a_resume_rewrites_a_stale_export() {
        let (whole, killed) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        train_toy(&toy_stage(whole.path(), 2, false), None).expect("trains");
        let stage = toy_stage(killed.path(), 2, false);
        train_toy(&toy_stage(killed.path(), 1, false), None).expect("trains");
        let after_one = std::fs::read(stage.model_path()).expect("export");
        train_toy(&stage, None).expect("trains");
        std::fs::write(stage.model_path(), &after_one).expect("make the export stale");
        let (resumed, _) = train_toy(&toy_stage(killed.path(), 2, true), None).expect("resumes");
        assert_eq!(resumed.resumed_after, 2, "nothing left to train");
        let expected = std::fs::read(toy_stage(whole.path(), 2, false).model_path()).expect("export");
        assert_eq!(std::fs::read(stage.model_path()).expect("export"), expected);
        std::fs::remove_file(stage.model_path()).expect("remove the export");
        train_toy(&toy_stage(killed.path(), 2, true), None).expect("resumes");
        assert_eq!(
            std::fs::read(stage.model_path()).expect("export"),
            expected,
            "a missing export is written"
        );
    }

    /// What a kill during a deletion or a save leaves (a half-deleted old checkpoint, an
    /// unfinished `.partial` folder) is cleared when the stage is resumed, even with nothing
    /// left to train; the newest two checkpoints stay.
    #[test]
    fn a_resume_clears_half_deleted_checkpoints() {
        let out = tempfile::tempdir().expect("tempdir");
        train_toy(&toy_stage(out.path(), 3, false), None).expect("trains");
        let dir = toy_stage(out.path(), 3, false).checkpoints().dir().to_path_buf();
        std::fs::create_dir(dir.join("epoch-0001")).expect("a half-deleted checkpoint");
        std::fs::write(dir.join("epoch-0001/optimizer.safetensors"), b"left over").expect("a file in it");
        std::fs::create_dir(dir.join("epoch-0004.partial")).expect("an unfinished save");
        let (resumed, _) = train_toy(&toy_stage(out.path(), 3, true), None).expect("resumes");
        assert_eq!(resumed.resumed_after, 3);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["epoch-0002", "epoch-0003"]);
    }

    /// A term above the bound, or far above its running median, stops the stage and names the
    /// term, the step and the limit.
    #[test]
    fn a_diverging_term_stops_the_stage() {
        let run = |values: fn(usize) -> f64, guard: Guard| {
            let out = tempfile::tempdir().expect("tempdir");
            let mut stage = toy_stage(out.path(), 30, false);
            stage.guard = guard;
            let mut model = Cpu::default().build_module::<Linear<2, 3>, f32>();
            run_epochs(
                &stage,
                &mut model,
                &mut Sgd::new(SgdConfig::default()),
                |_, batch, _, _, grads| {
                    Ok((
                        vec![Term {
                            name: "ce",
                            value: values(batch.step),
                            weight: 1.0,
                        }],
                        grads,
                    ))
                },
                |_, _| Ok(Record::new()),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        let error = run(|step| if step == 41 { 2e33 } else { 1.0 }, Guard::default()).expect_err("2e33");
        assert!(error.contains("`ce` diverged at step 41") && error.contains("bound"), "{error}");
        let error = run(|step| if step == 50 { 5e3 } else { 0.4 }, Guard::default()).expect_err("a jump");
        assert!(
            error.contains("`ce` diverged at step 50") && error.contains("running median"),
            "{error}"
        );
        assert!(error.contains("last good checkpoint"), "{error}");
        // A gradual rise, and early steps before a median exists, are not divergence.
        run(|step| 1.0 + step as f64, Guard::default()).expect("a steady rise passes");
        run(|step| if step == 3 { 5e3 } else { 0.4 }, Guard::default()).expect("no median yet at step 3");
        run(
            |step| if step == 50 { 5e3 } else { 0.4 },
            Guard {
                max_value: 1e6,
                max_growth: 1e5,
            },
        )
        .expect("a looser guard");
    }
}
