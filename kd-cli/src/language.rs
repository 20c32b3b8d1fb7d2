//! `kd run --regime language`: character language models on Debian's fortunes corpus.
//!
//! A 4-layer, 128-wide transformer teacher; a DistilBERT-style student (same width, 2 layers);
//! a TinyBERT-style student (64 wide, 2 layers, the same 4 heads) and the same narrow student on
//! the next characters alone. Quality is bits per character on the held-out tenth.

use std::time::Instant;

use dfdx::nn::{Module, NumParams, TensorCollection};
use dfdx::optim::Optimizer;
use dfdx::prelude::*;
use kd_core::data::fortunes::{self, Corpus, VOCAB};
use kd_core::loss::{cross_entropy_loss, LossTerms};
use kd_core::nn::builders::Linear;
use kd_core::nn::transformer::Transformer;
use kd_core::regime::language::{distilbert_loss, tinybert_loss, DistilBertConfig, TinyBertConfig};
use kd_core::train::{progress_bar, Adam, TermMeans};
use rand::{Rng, SeedableRng};

use crate::methods::Options;

type Error = Box<dyn std::error::Error>;
type Taped = OwnedTape<f32, Cpu>;

const CONTEXT: usize = 64;
const BATCH: usize = 32;
/// Optimiser steps per `--epochs` unit.
const STEPS_PER_EPOCH: usize = 300;

type Teacher = Transformer<VOCAB, 128, 4, 512, 4, CONTEXT>;
type WideStudent = Transformer<VOCAB, 128, 4, 512, 2, CONTEXT>;
type NarrowStudent = Transformer<VOCAB, 64, 4, 256, 2, CONTEXT>;
type Projections = (Linear<64, 128>, Linear<64, 128>);

/// `BATCH` windows of `CONTEXT` characters and the characters after each, from `seed`.
fn windows(dev: &Cpu, text: &[usize], count: usize, seed: u64) -> (Tensor<(usize, usize), usize, Cpu>, Vec<usize>) {
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
) -> f64 {
    let dev = Cpu::default();
    let mut total = 0.0;
    for chunk in 0..8 {
        let (x, y) = windows(&dev, &corpus.test, 32, 0xB17 + chunk);
        let logits = model.forward_all(x).logits;
        total += kd_core::ops::value_of(&cross_entropy_loss(logits, &y));
    }
    total / 8.0 / std::f64::consts::LN_2
}

/// Trains `model` for `steps` with `loss(model, inputs, targets)`.
fn train<M, F>(
    name: &str,
    model: &mut M,
    steps: usize,
    seed: u64,
    corpus: &Corpus,
    mut loss: F,
) -> Result<(f64, serde_json::Map<String, serde_json::Value>), Error>
where
    M: TensorCollection<f32, Cpu>,
    Adam: Optimizer<M, Cpu, f32>,
    F: FnMut(&M, Tensor<(usize, usize), usize, Cpu, Taped>, &[usize]) -> LossTerms<f32, Cpu, Taped>,
{
    let started = Instant::now();
    let dev = Cpu::default();
    let mut optimizer = Adam::new(AdamConfig {
        lr: 2e-3,
        ..Default::default()
    });
    let bar = progress_bar(steps, name);
    let mut means = TermMeans::default();
    let mut grads = model.alloc_grads();
    for step in 0..steps {
        optimizer.cfg.lr = if 3 * step >= 2 * steps { 5e-4 } else { 2e-3 };
        let (x, y) = windows(&dev, &corpus.train, BATCH, seed ^ (step as u64).wrapping_mul(0x9E37_79B9));
        let terms = loss(model, x.traced(std::mem::replace(&mut grads, Gradients::leaky())), &y);
        let (terms, next) = kd_core::distill::apply_step(terms, model, &mut optimizer, step).map_err(|e| format!("{name}: {e}"))?;
        grads = next;
        if step + STEPS_PER_EPOCH / 3 >= steps {
            means.add(&terms, BATCH);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((started.elapsed().as_secs_f64(), means.to_json()))
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
    /// Its mean loss terms in the last epoch.
    pub terms: serde_json::Map<String, serde_json::Value>,
}

fn ce_only<const D: usize, const F: usize, const L: usize>(
    model: &Transformer<VOCAB, D, 4, F, L, CONTEXT>,
    x: Tensor<(usize, usize), usize, Cpu, Taped>,
    y: &[usize],
) -> LossTerms<f32, Cpu, Taped> {
    LossTerms::new().add("ce", 1.0, cross_entropy_loss(model.forward_all(x).logits, y))
}

/// Trains the four models on `corpus` for `options.epochs` × 300 steps (the teacher twice as
/// many); returns their rows.
pub fn run(corpus: &Corpus, options: &Options) -> Result<Vec<Row>, Error> {
    train_all(corpus, options.seed, STEPS_PER_EPOCH * options.epochs.max(1))
}

/// Loads the corpus and trains the four models, each student for `steps` steps of 32 × 64
/// characters and the teacher for twice as many; returns their rows.
pub fn run_steps(seed: u64, steps: usize) -> Result<Vec<Row>, Error> {
    train_all(&fortunes::load()?, seed, steps)
}

fn train_all(corpus: &Corpus, seed: u64, steps: usize) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();

    let mut teacher = Teacher::build(&Cpu::seed_from_u64(seed ^ 0x7EAC));
    let (seconds, terms) = train("language teacher", &mut teacher, 2 * steps, seed, corpus, ce_only)?;
    rows.push(Row {
        model: "teacher (4 layers, 128 wide)".into(),
        parameters: teacher.num_trainable_params(),
        bits_per_character: bits_per_character(&teacher, corpus),
        seconds,
        terms,
    });

    let mut alone = NarrowStudent::build(&Cpu::seed_from_u64(seed ^ 0x5A));
    let (seconds, terms) = train("narrow student alone", &mut alone, steps, seed ^ 1, corpus, ce_only)?;
    rows.push(Row {
        model: "narrow student alone (2 layers, 64 wide)".into(),
        parameters: alone.num_trainable_params(),
        bits_per_character: bits_per_character(&alone, corpus),
        seconds,
        terms,
    });

    let mut distilbert = WideStudent::build(&Cpu::seed_from_u64(seed ^ 0xD1));
    let config = DistilBertConfig::default();
    let (seconds, terms) = train("DistilBERT student", &mut distilbert, steps, seed ^ 2, corpus, |model, x, y| {
        let teacher_outputs = teacher.forward_all(x.retaped::<NoneTape>());
        distilbert_loss(model.forward_all(x), teacher_outputs, y, &config)
    })?;
    rows.push(Row {
        model: "DistilBERT-style student (2 layers, 128 wide)".into(),
        parameters: distilbert.num_trainable_params(),
        bits_per_character: bits_per_character(&distilbert, corpus),
        seconds,
        terms,
    });

    let dev = Cpu::seed_from_u64(seed ^ 0x71);
    let mut tinybert = (NarrowStudent::build(&dev), dev.build_module::<Projections, f32>());
    let config = TinyBertConfig::default();
    let (seconds, terms) = train(
        "TinyBERT student",
        &mut tinybert,
        steps,
        seed ^ 3,
        corpus,
        |(model, projections), x, y| {
            // TinyBERT learns from the teacher alone; the next characters are not used.
            let _ = y;
            let teacher_outputs = teacher.forward_all(x.retaped::<NoneTape>());
            tinybert_loss(
                model.forward_all(x),
                teacher_outputs,
                |h| projections.0.forward(h),
                |e| projections.1.forward(e),
                &config,
            )
        },
    )?;
    rows.push(Row {
        model: "TinyBERT-style student (2 layers, 64 wide)".into(),
        parameters: tinybert.0.num_trainable_params(),
        bits_per_character: bits_per_character(&tinybert.0, corpus),
        seconds,
        terms,
    });
    Ok(rows)
}
