//! Character language models on Debian's fortunes corpus (`kd run --regime language`).
//!
//! A 4-layer, 128-wide transformer teacher; a DistilBERT-style student (same width, 2 layers)
//! and the same wide student on the next characters alone; a TinyBERT-style student (64 wide,
//! 2 layers, the same 4 heads), trained in TinyBERT's two stages (intermediate layers, then the
//! prediction layer), and the same narrow student on the next characters alone. Quality is bits
//! per character on the held-out tenth. Each model trains through the epoch runner: one epoch
//! of `steps` steps (TinyBERT: half in each stage), each on 32 random windows.

use dfdx::nn::{LoadFromSafetensors, Module, NumParams, SaveToSafetensors, TensorCollection};
use dfdx::optim::Optimizer;
use dfdx::prelude::*;
use kd_core::charts::Table;
use kd_core::data::fortunes::{self, Corpus, VOCAB};
use kd_core::distill::{apply_step, StepError};
use kd_core::loss::{cross_entropy_loss, LossTerms};
use kd_core::nn::transformer::Transformer;
use kd_core::regime::language::{distilbert_loss, tinybert_loss, DistilBertConfig, TinyBertConfig};
use kd_core::train::{run_epochs, Adam, Guard, Record, Stage};
use kd_core::LossError;
use rand::{Rng, SeedableRng};

use crate::models::{LanguageTeacher, NarrowStudent, Projections, WideStudent, CONTEXT};
use crate::settings::{Error, Options};

type Taped = OwnedTape<f32, Cpu>;
type Windows<T = NoneTape> = Tensor<(usize, usize), usize, Cpu, T>;

const BATCH: usize = 32;
/// Optimiser steps per `--epochs` unit.
const STEPS_PER_EPOCH: usize = 300;

/// `count` windows of `CONTEXT` characters and the characters after each, from `seed`.
fn windows(dev: &Cpu, text: &[usize], count: usize, seed: u64) -> (Windows, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut inputs, mut targets) = (Vec::with_capacity(count * CONTEXT), Vec::with_capacity(count * CONTEXT));
    for _ in 0..count {
        let start = rng.gen_range(0..text.len() - CONTEXT - 1);
        inputs.extend_from_slice(&text[start..start + CONTEXT]);
        targets.extend_from_slice(&text[start + 1..start + CONTEXT + 1]);
    }
    (dev.tensor_from_vec(inputs, (count, CONTEXT)), targets)
}

/// Bits per character on 256 fixed held-out windows.
fn bits_per_character<const D: usize, const F: usize, const L: usize>(
    model: &Transformer<VOCAB, D, 4, F, L, CONTEXT>,
    corpus: &Corpus,
) -> Result<f64, LossError> {
    let dev = Cpu::default();
    let mut total = 0.0;
    for chunk in 0..8 {
        let (x, y) = windows(&dev, &corpus.test, 32, 0xB17 + chunk);
        let logits = model.forward_all(x).logits;
        total += kd_core::ops::value_of(&cross_entropy_loss(logits, &y)?);
    }
    Ok(total / 8.0 / std::f64::consts::LN_2)
}

/// One result row.
pub struct Row {
    /// Which model.
    pub model: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Bits per character on held-out text (lower is better).
    pub bits_per_character: f64,
    /// Training wall time.
    pub seconds: f64,
    /// Its mean loss terms over the training.
    pub terms: serde_json::Map<String, serde_json::Value>,
}

/// Where and how long the language models train.
struct Run<'a> {
    options: &'a Options,
    corpus: &'a Corpus,
}

impl Run<'_> {
    /// Trains `model` for `steps` with `loss(model, inputs, targets)` through the epoch runner,
    /// Adam at 2e-3, a quarter of that for the last third; `bits(model)` measures it after.
    fn train<M>(
        &self,
        name: &str,
        model: &mut M,
        steps: usize,
        seed: u64,
        mut loss: impl FnMut(&M, Windows<Taped>, &[usize]) -> Result<LossTerms<f32, Cpu, Taped>, LossError>,
        bits: impl Fn(&M) -> Result<f64, LossError>,
    ) -> Result<(f64, serde_json::Map<String, serde_json::Value>, f64), Error>
    where
        M: TensorCollection<f32, Cpu> + SaveToSafetensors<f32, Cpu> + LoadFromSafetensors<f32, Cpu>,
        Adam: Optimizer<M, Cpu, f32>,
    {
        let stage = Stage {
            name,
            out: &self.options.out,
            epochs: 1,
            resume: self.options.resume,
            samples: steps * BATCH,
            batch_size: BATCH,
            seed,
            learning_rate: None,
            guard: Guard::default(),
        };
        let mut optimizer = Adam::new(AdamConfig {
            lr: 2e-3,
            ..Default::default()
        });
        let fitted = run_epochs(
            &stage,
            model,
            &mut optimizer,
            |epoch, batch, model, optimizer, grads| -> Result<_, StepError> {
                optimizer.cfg.lr = if 3 * batch.step >= 2 * steps { 5e-4 } else { 2e-3 };
                let (x, y) = windows(
                    &epoch.dev,
                    &self.corpus.train,
                    BATCH,
                    seed ^ (batch.step as u64).wrapping_mul(0x9E37_79B9),
                );
                let terms = loss(model, x.traced(grads), &y).map_err(StepError::loss(batch.step))?;
                apply_step(terms, model, optimizer, batch.step)
            },
            |model, _| {
                let mut record = Record::new();
                record.insert("bits_per_character".into(), bits(model)?.into());
                Ok(record)
            },
        )?;
        let bits = fitted.last("bits_per_character").and_then(|b| b.as_f64()).unwrap_or(f64::NAN);
        let terms = fitted.records.last().and_then(|r| r.as_object()).cloned().unwrap_or_default();
        let terms = terms.into_iter().filter(|(key, _)| crate::report::is_loss_term(key)).collect();
        Ok((fitted.seconds, terms, bits))
    }
}

fn ce_only<const D: usize, const F: usize, const L: usize>(
    model: &Transformer<VOCAB, D, 4, F, L, CONTEXT>,
    x: Windows<Taped>,
    y: &[usize],
) -> Result<LossTerms<f32, Cpu, Taped>, LossError> {
    Ok(LossTerms::new().add("ce", 1.0, cross_entropy_loss(model.forward_all(x).logits, y)?))
}

/// Trains the four models on `corpus` for `options.epochs` × 300 steps (the teacher twice as
/// many); returns their rows.
pub fn run(corpus: &Corpus, options: &Options) -> Result<Vec<Row>, Error> {
    train_all(corpus, options, STEPS_PER_EPOCH * options.epochs.max(1))
}

/// Loads the corpus and trains the four models, each student for `steps` steps of 32 × 64
/// characters and the teacher for twice as many, checkpoints in a temporary folder; returns
/// their rows.
pub fn run_steps(seed: u64, steps: usize) -> Result<Vec<Row>, Error> {
    let scratch = std::env::temp_dir().join(format!("kd-language-{}-{seed}", std::process::id()));
    let options = Options {
        seed,
        out: scratch.clone(),
        ..Options::default()
    };
    let rows = train_all(&fortunes::load()?, &options, steps);
    std::fs::remove_dir_all(&scratch).map_err(kd_core::files::FileError::at(&scratch, "delete the scratch folder"))?;
    rows
}

/// The seed offsets of the students' initial weights: every student of an architecture starts
/// from the same weights as that architecture alone, so each Δ is paired.
const NARROW_INIT: u64 = 0x5A;
/// See [`NARROW_INIT`].
const WIDE_INIT: u64 = 0xD1;

/// Trains the four models on `corpus`, each student for `steps` steps of 32 × 64 characters and
/// the teacher for twice as many, checkpoints under `options.out`; returns their rows.
pub fn train_all(corpus: &Corpus, options: &Options, steps: usize) -> Result<Vec<Row>, Error> {
    let seed = options.seed;
    let run = Run { options, corpus };
    let mut rows = Vec::new();

    let mut teacher = LanguageTeacher::build(&Cpu::seed_from_u64(seed ^ 0x7EAC));
    let (seconds, terms, bits) = run.train("language_teacher", &mut teacher, 2 * steps, seed, ce_only, |m| {
        bits_per_character(m, corpus)
    })?;
    rows.push(Row {
        model: "teacher (4 layers, 128 wide)".into(),
        parameters: teacher.num_trainable_params(),
        bits_per_character: bits,
        seconds,
        terms,
    });

    let mut alone = NarrowStudent::build(&Cpu::seed_from_u64(seed ^ NARROW_INIT));
    let (seconds, terms, bits) = run.train("narrow_student_alone", &mut alone, steps, seed ^ 1, ce_only, |m| {
        bits_per_character(m, corpus)
    })?;
    rows.push(Row {
        model: "narrow student alone (2 layers, 64 wide)".into(),
        parameters: alone.num_trainable_params(),
        bits_per_character: bits,
        seconds,
        terms,
    });

    // DistilBERT's baseline: its own architecture (the teacher's width) on the characters alone,
    // from the same initial weights.
    let mut wide_alone = WideStudent::build(&Cpu::seed_from_u64(seed ^ WIDE_INIT));
    let (seconds, terms, bits) = run.train("wide_student_alone", &mut wide_alone, steps, seed ^ 2, ce_only, |m| {
        bits_per_character(m, corpus)
    })?;
    rows.push(Row {
        model: "wide student alone (2 layers, 128 wide)".into(),
        parameters: wide_alone.num_trainable_params(),
        bits_per_character: bits,
        seconds,
        terms,
    });

    let mut distilbert = WideStudent::build(&Cpu::seed_from_u64(seed ^ WIDE_INIT));
    let config = DistilBertConfig::default();
    let (seconds, terms, bits) = run.train(
        "distilbert_student",
        &mut distilbert,
        steps,
        seed ^ 2,
        |model, x, y| {
            let teacher_outputs = teacher.forward_all(x.retaped::<NoneTape>());
            distilbert_loss(model.forward_all(x), teacher_outputs, y, &config)
        },
        |m| bits_per_character(m, corpus),
    )?;
    rows.push(Row {
        model: "DistilBERT-style student (2 layers, 128 wide)".into(),
        parameters: distilbert.num_trainable_params(),
        bits_per_character: bits,
        seconds,
        terms,
    });

    // TinyBERT's two stages, half the steps each: the intermediate layers (embeddings, hidden
    // states, attention scores) first, then the prediction layer. It never sees the next
    // characters: it learns from the teacher alone. Its student starts from the narrow student
    // alone's initial weights (the projections are drawn after them), so Δ is paired.
    let dev = Cpu::seed_from_u64(seed ^ NARROW_INIT);
    let mut tinybert = (NarrowStudent::build(&dev), dev.build_module::<Projections, f32>());
    let (mut seconds, mut terms, mut bits) = (0.0, serde_json::Map::new(), f64::NAN);
    for (stage, config, stage_seed) in [
        (
            "tinybert_layers",
            TinyBertConfig {
                prediction: 0.0,
                ..TinyBertConfig::default()
            },
            seed ^ 3,
        ),
        (
            "tinybert_prediction",
            TinyBertConfig {
                layer: 0.0,
                ..TinyBertConfig::default()
            },
            seed ^ 4,
        ),
    ] {
        let (stage_seconds, stage_terms, stage_bits) = run.train(
            stage,
            &mut tinybert,
            steps.div_ceil(2),
            stage_seed,
            |(model, projections), x, _next_characters| {
                let teacher_outputs = teacher.forward_all(x.retaped::<NoneTape>());
                tinybert_loss(
                    model.forward_all(x),
                    teacher_outputs,
                    |h| projections.0.forward(h),
                    |e| projections.1.forward(e),
                    &config,
                )
            },
            |(model, _)| bits_per_character(model, corpus),
        )?;
        seconds += stage_seconds;
        terms.extend(stage_terms.into_iter().map(|(term, value)| (format!("{stage}.{term}"), value)));
        bits = stage_bits;
    }
    rows.push(Row {
        model: "TinyBERT-style student (2 layers, 64 wide)".into(),
        parameters: tinybert.0.num_trainable_params(),
        bits_per_character: bits,
        seconds,
        terms,
    });
    Ok(rows)
}

/// The language regime's table and its JSON.
pub fn report(rows: &[Row], options: &Options) -> (Table, serde_json::Value) {
    let mut table = Table::new(["model", "parameters", "bits / char", "wall time"]);
    for row in rows {
        table.row([
            row.model.clone(),
            row.parameters.to_string(),
            format!("{:.3}", row.bits_per_character),
            format!("{:.0} s", row.seconds),
        ]);
    }
    let json = serde_json::json!({
        "steps": STEPS_PER_EPOCH * options.epochs.max(1),
        "models": rows.iter().map(|r| serde_json::json!({"model": r.model, "parameters": r.parameters,
            "bits_per_character": r.bits_per_character, "seconds": r.seconds, "terms": r.terms})).collect::<Vec<_>>(),
    });
    (table, json)
}
