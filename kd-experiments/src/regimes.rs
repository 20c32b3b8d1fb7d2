//! The training regimes of [`kd_core::regime`] on the CNN experiments' data (`kd run
//! --regime`): Born-Again generations, Deep Mutual Learning, Be Your Own Teacher against deep
//! supervision alone, NetAug, and the generative and language regimes of their own modules.

use std::time::Instant;

use dfdx::prelude::*;
use kd_core::charts::Table;
use kd_core::data::mnist::Split;
use kd_core::distill::{apply_step, Distill, StepError};
use kd_core::loss::{cross_entropy_loss, ByotConfig, LossTerms, Term};
use kd_core::models::byot_cnn::ByotCnn;
use kd_core::regime::born_again::{ensemble_probabilities, Generations};
use kd_core::regime::deep_supervision::deep_supervision_loss;
use kd_core::regime::mutual::mutual_step;
use kd_core::regime::netaug::{NetAugMlp, TinyMlp};
use kd_core::spatial::trace_input;
use kd_core::train::{run_epochs, supervised_step, Evaluation, Fitted, Record, TrainError};
use rand::Rng;

use crate::inputs::{evaluate_flat, evaluate_images, final_errors, flat_batch, image_batch, in_chunks, jitter_if};
use crate::models::{BornAgainCnn, CnnStudentAlone};
use crate::recipes::{adam, distil, learning_rate, stage, train_on_labels};
use crate::report::{LineChart, Report};
use crate::settings::{Error, Options};

/// A training regime of `kd run --regime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Born-Again networks (Furlanello et al. 2018).
    BornAgain,
    /// Deep Mutual Learning (Zhang et al. 2018).
    Dml,
    /// Be Your Own Teacher (Zhang et al. 2019).
    Byot,
    /// GAN Compression (Li et al. 2020) on MNIST denoising.
    Gan,
    /// DistilBERT/TinyBERT-style character language models.
    Language,
    /// NetAug (Cai et al. 2022).
    Netaug,
}

impl Regime {
    /// Every regime, in the command line's order.
    pub const ALL: [Regime; 6] = [
        Regime::BornAgain,
        Regime::Dml,
        Regime::Byot,
        Regime::Gan,
        Regime::Language,
        Regime::Netaug,
    ];

    /// The name on the command line and in `regimes.json`.
    pub fn name(self) -> &'static str {
        match self {
            Regime::BornAgain => "born-again",
            Regime::Dml => "dml",
            Regime::Byot => "byot",
            Regime::Gan => "gan",
            Regime::Language => "language",
            Regime::Netaug => "netaug",
        }
    }

    /// What it trains.
    pub fn about(self) -> &'static str {
        match self {
            Regime::BornAgain => "three generations of the student CNN, each taught by the previous; each generation's and the ensembles' test errors",
            Regime::Dml => "two student CNNs trained together from scratch, against each trained alone from the same weights",
            Regime::Byot => "a three-stage CNN with a classifier per stage: BYOT, deep supervision alone and the plain network; every head's test errors",
            Regime::Gan => "MNIST denoising (σ = 0.5): teacher generator, student alone, student distilled; parameters, multiply-adds and PSNR",
            Regime::Language => "character LMs on Debian's fortunes: teacher, DistilBERT- and TinyBERT-style students, the student alone; bits per character",
            Regime::Netaug => "a tiny 784-16-16-10 MLP trained inside wider MLPs that share its weights, against the tiny MLP alone",
        }
    }
}

/// One result row: a model and its test errors.
pub struct Row {
    /// What was trained, e.g. "generation 1 (taught by the previous)".
    pub model: String,
    /// Test errors at the end.
    pub test_errors: usize,
    /// Wall time of its training.
    pub seconds: f64,
    /// `(epoch, test errors)` per epoch; empty for a model that was not trained (an ensemble).
    pub curve: Vec<(f64, f64)>,
}

impl Row {
    /// The row of a trained model: its last test errors, wall time and curve.
    pub fn trained(model: impl Into<String>, fitted: &Fitted) -> Row {
        Row {
            model: model.into(),
            test_errors: final_errors(fitted),
            seconds: fitted.seconds,
            curve: fitted.curve("test_errors"),
        }
    }
}

/// Born-Again: three generations of the student CNN, each taught by the previous, and the
/// ensembles of the first two and all three.
pub fn born_again(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    let names = ["ban_gen0", "ban_gen1", "ban_gen2"];
    let generations = Generations::train(
        names.len(),
        |k| BornAgainCnn::build_distiller(&Cpu::seed_from_u64(options.seed ^ (0xBA + k as u64))),
        |k, distiller, teacher| -> Result<(), TrainError> {
            let fitted = match teacher {
                None => train_on_labels(names[k], options.epochs, &mut distiller.student, options, train, test)?,
                Some(previous) => {
                    let (fitted, trained) =
                        distil::<BornAgainCnn, _, _, _>(names[k], &previous.student, options.seed ^ k as u64, options, train, test)?;
                    *distiller = trained;
                    fitted
                }
            };
            let name = format!("generation {k}{}", if k == 0 { " (labels)" } else { " (taught by the previous)" });
            rows.push(Row::trained(name, &fitted));
            Ok(())
        },
    )?;
    let started = Instant::now();
    let dev = Cpu::default();
    let mut logits = vec![Vec::new(); generations.models.len()];
    let mut labels = Vec::new();
    in_chunks(test, 500, |indices| {
        let (x, y) = image_batch(&dev, test, indices, None);
        for (model, out) in generations.models.iter().zip(&mut logits) {
            out.extend(model.student.forward(x.clone()).as_vec());
        }
        labels.extend(y);
    });
    for size in 2..=generations.models.len() {
        let mut evaluation = Evaluation::new(10);
        evaluation.add(&ensemble_probabilities(&logits[..size], 10), &labels);
        rows.push(Row {
            model: format!("ensemble of generations 0..{}", size - 1),
            test_errors: evaluation.errors,
            seconds: started.elapsed().as_secs_f64(),
            curve: Vec::new(),
        });
    }
    Ok(rows)
}

/// A mutual peer's term under its peer's name (`"peer1.ce"`, `"peer2.kl"`).
fn peer_term(peer: usize, term: Term) -> Term {
    let name = match (peer, term.name) {
        (0, "ce") => "peer1.ce",
        (0, _) => "peer1.kl",
        (_, "ce") => "peer2.ce",
        _ => "peer2.kl",
    };
    Term { name, ..term }
}

/// Deep Mutual Learning as the paper's same-architecture pairs (ResNet-32 with ResNet-32 on
/// CIFAR-100): two student CNNs from different initial weights learn together, and each is
/// compared with itself trained alone from the same initial weights on the same batches.
pub fn dml(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    let init = |peer: u64| Cpu::seed_from_u64(options.seed ^ (0xD1 + peer)).build_module::<CnnStudentAlone, f32>();
    let mut rows = Vec::new();
    for (peer, name) in [(0, "dml_alone_peer1"), (1, "dml_alone_peer2")] {
        let fitted = train_on_labels(name, options.epochs, &mut init(peer), options, train, test)?;
        rows.push(Row::trained(format!("peer {} alone", peer + 1), &fitted));
    }

    let schedule = |epoch| learning_rate(epoch, options.epochs);
    let fitted = run_epochs(
        &stage("dml_mutual", options.epochs, options.seed, train, options, &schedule),
        &mut (init(0), init(1)),
        &mut (adam(), adam()),
        |epoch, batch, (first, second), (first_adam, second_adam), grads| {
            let (x, y) = image_batch(&epoch.dev, train, batch.indices, jitter_if(options.jitter, &mut epoch.rng));
            let terms = mutual_step::<_, 10>(&mut [&mut (first, first_adam), &mut (second, second_adam)], x, &y, batch.step)?;
            let named = terms
                .into_iter()
                .enumerate()
                .flat_map(|(peer, terms)| terms.into_iter().map(move |t| peer_term(peer, t)));
            Ok((named.collect(), grads))
        },
        |(first, second), epoch| {
            let mut record = Record::new();
            record.insert("peer1_test_errors".into(), evaluate_images(first, &epoch.dev, test).errors.into());
            record.insert("peer2_test_errors".into(), evaluate_images(second, &epoch.dev, test).errors.into());
            Ok(record)
        },
    )?;
    for (model, key) in [("peer 1, mutual", "peer1_test_errors"), ("peer 2, mutual", "peer2_test_errors")] {
        let curve = fitted.curve(key);
        rows.push(Row {
            model: model.into(),
            test_errors: curve.last().map_or(0, |p| p.1 as usize),
            seconds: fitted.seconds,
            curve,
        });
    }
    Ok(rows)
}

/// Every head's test errors of the BYOT network.
fn head_errors(network: &ByotCnn, dev: &Cpu, test: &Split) -> [usize; 3] {
    let mut evaluations = [Evaluation::new(10), Evaluation::new(10), Evaluation::new(10)];
    in_chunks(test, 500, |indices| {
        let (x, y) = image_batch(dev, test, indices, None);
        for (evaluation, logits) in evaluations.iter_mut().zip(network.predict(x)) {
            evaluation.add(&logits.as_vec(), &y);
        }
    });
    evaluations.map(|e| e.errors)
}

/// How the BYOT network is trained.
#[derive(Clone, Copy)]
enum Supervision<'a> {
    /// The plain network: the deepest head on the labels alone (the shallow heads idle).
    DeepestHead,
    /// Every head on the labels.
    Deep,
    /// Every head on the labels, and the shallow heads taught by the deepest (BYOT).
    SelfDistillation(&'a ByotConfig),
}

/// Trains the BYOT network as `supervision` says; returns its record and every head's final
/// test errors.
fn deep_supervision(
    name: &str,
    supervision: Supervision<'_>,
    options: &Options,
    train: &Split,
    test: &Split,
) -> Result<(Fitted, [usize; 3]), TrainError> {
    let mut network = ByotCnn::build(&Cpu::seed_from_u64(options.seed ^ 0xB7));
    let schedule = |epoch| learning_rate(epoch, options.epochs);
    let fitted = run_epochs(
        &stage(name, options.epochs, options.seed, train, options, &schedule),
        &mut network,
        &mut adam(),
        |epoch, batch, network, optimizer, grads| {
            let (x, y) = image_batch(&epoch.dev, train, batch.indices, None);
            let loss = match supervision {
                Supervision::DeepestHead => cross_entropy_loss(network.forward_deepest(trace_input(x, grads)), &y)
                    .map(|ce| LossTerms::new().add("deepest.ce", 1.0, ce)),
                Supervision::Deep => deep_supervision_loss(network.forward_heads(trace_input(x, grads)), &y, None),
                Supervision::SelfDistillation(config) => {
                    deep_supervision_loss(network.forward_heads(trace_input(x, grads)), &y, Some(config))
                }
            };
            apply_step(loss.map_err(StepError::loss(batch.step))?, network, optimizer, batch.step)
        },
        |network, epoch| {
            let errors = head_errors(network, &epoch.dev, test);
            let mut record = Record::new();
            record.insert("test_errors".into(), errors[2].into());
            record.insert("head_test_errors".into(), serde_json::json!(errors));
            Ok(record)
        },
    )?;
    // The last record holds every head's errors (also after a resume that had nothing left).
    let errors = match fitted
        .last("head_test_errors")
        .and_then(|e| serde_json::from_value::<[usize; 3]>(e.clone()).ok())
    {
        Some(errors) => errors,
        None => head_errors(&network, &Cpu::default(), test),
    };
    Ok((fitted, errors))
}

/// Be Your Own Teacher on one backbone, `ByotCnn`, from the same initial weights: deep
/// supervision alone, BYOT, and the plain network (its deepest head alone, the paper's
/// baseline). One row per head (curves empty); the plain network's shallow heads are untrained
/// and not reported.
pub fn byot(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    // The unofficial reference's α and T; λ scaled to this network's 64-wide features.
    let config = ByotConfig {
        alpha: 0.1,
        temperature: 3.0,
        feature_weight: 0.03,
    };
    let heads = ["head 1 (after stage 1)", "head 2 (after stage 2)", "deepest head"];
    for (name, label, supervision) in [
        ("deep_supervision", "deep supervision", Supervision::Deep),
        ("byot", "BYOT", Supervision::SelfDistillation(&config)),
        ("plain", "plain network", Supervision::DeepestHead),
    ] {
        let (fitted, errors) = deep_supervision(name, supervision, options, train, test)?;
        let reported = match supervision {
            Supervision::DeepestHead => 2,
            _ => 0,
        };
        for (head, errors) in heads.iter().zip(errors).skip(reported) {
            rows.push(Row {
                model: format!("{label}: {head}"),
                test_errors: errors,
                seconds: fitted.seconds,
                curve: Vec::new(),
            });
        }
    }
    Ok(rows)
}

/// The weight of the augmented models' cross-entropy, chosen on the validation split among 1,
/// 0.3 and 0.1 (`results/netaug_validation.json`).
pub const NETAUG_ALPHA: f64 = 0.3;

/// NetAug: the tiny MLP alone, then trained inside its augmented MLPs.
pub fn netaug(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    const EXTRA_WIDTHS: [usize; 3] = [16, 32, 48];
    let schedule = |epoch| learning_rate(epoch, options.epochs);
    let record = |errors: usize| {
        let mut record = Record::new();
        record.insert("test_errors".into(), errors.into());
        Ok(record)
    };
    let mut rows = Vec::new();
    let fitted = run_epochs(
        &stage("netaug_tiny_alone", options.epochs, options.seed, train, options, &schedule),
        &mut Cpu::seed_from_u64(options.seed ^ 0xA6).build_module::<TinyMlp<784, 16, 10>, f32>(),
        &mut adam(),
        |epoch, batch, model, optimizer, grads| {
            let (x, y) = flat_batch(&epoch.dev, train, batch.indices, None);
            supervised_step(model, optimizer, x, &y, grads, batch.step)
        },
        |model, epoch| record(evaluate_flat(model, &epoch.dev, test).errors),
    )?;
    rows.push(Row::trained("tiny 784-16-16-10 alone", &fitted));

    let fitted = run_epochs(
        &stage("netaug", options.epochs, options.seed, train, options, &schedule),
        &mut NetAugMlp::<784, 16, 48, 10>::build(&Cpu::seed_from_u64(options.seed ^ 0xA6)),
        &mut adam(),
        |epoch, batch, model, optimizer, grads| {
            let (x, y) = flat_batch(&epoch.dev, train, batch.indices, None);
            let extra = EXTRA_WIDTHS[epoch.rng.gen_range(0..EXTRA_WIDTHS.len())];
            let loss = model
                .loss(trace_input(x, grads), &y, extra, NETAUG_ALPHA)
                .map_err(StepError::loss(batch.step))?;
            apply_step(loss, model, optimizer, batch.step)
        },
        |model, epoch| record(evaluate_flat(&model.tiny, &epoch.dev, test).errors),
    )?;
    rows.push(Row::trained(
        "tiny 784-16-16-10 with NetAug (inference: the tiny MLP alone)",
        &fitted,
    ));
    Ok(rows)
}

/// The rows of a classification regime as a table and JSON.
fn classification(rows: &[Row], test: &Split) -> (Table, serde_json::Value) {
    let mut table = Table::new(["model", "test errors", "accuracy", "wall time"]);
    for row in rows {
        table.row([
            row.model.clone(),
            row.test_errors.to_string(),
            format!("{:.2} %", 100.0 * (1.0 - row.test_errors as f64 / test.len() as f64)),
            format!("{:.0} s", row.seconds),
        ]);
    }
    let json = rows
        .iter()
        .map(|r| serde_json::json!({"model": r.model, "test_errors": r.test_errors, "seconds": r.seconds}))
        .collect();
    (table, json)
}

/// `kd run --regime`: runs the chosen regimes on the data of `options`, prints one table per
/// regime and writes `regimes.json` and a chart of the trained models' test errors.
pub fn run(regimes: &[Regime], options: &Options) -> Result<(), Error> {
    let (train, test, dataset) = crate::settings::load(options)?;
    crate::report::announce(dataset, &train, &test, options);
    let mut results = serde_json::Map::new();
    let mut tables = Vec::new();
    let mut curves = Vec::new();
    for &regime in regimes {
        let (table, json) = match regime {
            Regime::Gan => crate::generative::report(&crate::generative::run(options, &train, &test)?, &train, options, dataset),
            Regime::Language => crate::language::report(&crate::language::run(&kd_core::data::fortunes::load()?, options)?, options),
            classifier => {
                let rows = match classifier {
                    Regime::BornAgain => born_again(options, &train, &test)?,
                    Regime::Dml => dml(options, &train, &test)?,
                    Regime::Byot => byot(options, &train, &test)?,
                    _ => netaug(options, &train, &test)?,
                };
                curves.extend(rows.iter().filter(|r| !r.curve.is_empty()).map(|r| kd_core::charts::Series {
                    name: format!("{}: {}", regime.name(), r.model),
                    points: r.curve.clone(),
                }));
                classification(&rows, &test)
            }
        };
        results.insert(regime.name().into(), json);
        tables.push((format!("{}: {}", regime.name(), regime.about()), table));
    }
    let chart = LineChart {
        stem: "regimes_test_errors".into(),
        title: format!("{dataset}: test errors per epoch (of {})", test.len()),
        x_label: "epoch".into(),
        y_label: "test errors".into(),
        series: curves,
    };
    Report {
        title: format!(
            "regimes on {dataset}: {} training images, {} epochs per model, seed {}",
            train.len(),
            options.epochs,
            options.seed
        ),
        tables,
        results: serde_json::Value::Object(results),
        file: "regimes.json",
        charts: if chart.series.is_empty() { Vec::new() } else { vec![chart] },
    }
    .publish(&options.out)
}
