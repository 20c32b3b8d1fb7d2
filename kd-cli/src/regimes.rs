//! `kd run --regime ...`: the training regimes of `kd_core::regime` on the same data as the
//! methods: Born-Again generations, Deep Mutual Learning, and Be Your Own Teacher against deep
//! supervision alone.

use std::time::Instant;

use clap::ValueEnum;
use dfdx::prelude::*;
use kd_core::data::mnist::Split;
use kd_core::distill::Distill;
use kd_core::loss::ByotConfig;
use kd_core::models::byot_cnn::ByotCnn;
use kd_core::regime::born_again::{ensemble_probabilities, Generations};
use kd_core::regime::deep_supervision::deep_supervision_loss;
use kd_core::regime::mutual::{mutual_step, Peer};
use kd_core::spatial::trace_input;
use kd_core::train::{epoch_order, epoch_seed, fit, progress_bar, write_atomically, Evaluation, Fitted, TermMeans, TrainError};

use crate::hinton;
use crate::methods::{
    self, adam, batch, errors, evaluate, learning_rate, stage, train_on_labels, BornAgainCnn, CnnTeacher, Options, StudentAlone, BATCH,
};

type Error = Box<dyn std::error::Error>;

/// A training regime of `kd run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Regime {
    /// Born-Again networks (Furlanello et al. 2018): three generations of the student CNN, each
    /// taught by the previous one; each generation's and the ensemble's test errors.
    BornAgain,
    /// Deep Mutual Learning (Zhang et al. 2018): the student CNN and the teacher CNN trained
    /// together from scratch, against each trained alone.
    Dml,
    /// Be Your Own Teacher (Zhang et al. 2019): a three-stage CNN with a classifier per stage,
    /// against deep supervision alone on the same budget; every head's test errors.
    Byot,
    /// GAN Compression (Li et al. 2020) on MNIST denoising (σ = 0.5): a 32/64-channel teacher
    /// generator, an 8/16-channel student alone, and the student distilled (L1 to the teacher,
    /// adapted enc2/dec1 maps, adversarial); parameters, multiply-adds and PSNR.
    Gan,
    /// Language models on Debian's fortunes: a 4-layer transformer teacher, a DistilBERT-style
    /// student (same width, 2 layers), a TinyBERT-style student (half width, 2 layers) and that
    /// student alone; bits per character on held-out text.
    Language,
    /// NetAug (Cai et al. 2022): a tiny 784-16-16-10 MLP trained inside wider MLPs (16 to 48
    /// extra units per layer) that share its weights, against the tiny MLP alone.
    Netaug,
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
    fn trained(model: impl Into<String>, fitted: &Fitted) -> Row {
        Row {
            model: model.into(),
            test_errors: errors(fitted) as usize,
            seconds: fitted.seconds,
            curve: fitted.curve("test_errors"),
        }
    }
}

fn evaluation_of(probabilities_or_logits: &[f32], labels: &[usize]) -> Evaluation {
    let mut evaluation = Evaluation::new(10);
    evaluation.add(probabilities_or_logits, labels);
    evaluation
}

/// Born-Again: three generations of the student CNN, each taught by the previous, and the
/// ensembles of the first two and all three.
pub fn born_again(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    let dev = Cpu::default();
    let mut rows = Vec::new();
    let names = ["ban_gen0", "ban_gen1", "ban_gen2"];
    let generations = Generations::train(
        names.len(),
        |k| BornAgainCnn::build_distiller(&Cpu::seed_from_u64(options.seed ^ (0xBA + k as u64))),
        |k, distiller, teacher| -> Result<(), TrainError> {
            let stage = stage(names[k], options.epochs, train, options);
            let fitted = match teacher {
                None => train_on_labels(&stage, &mut distiller.student, train, test, options.seed)?,
                Some(previous) => {
                    let (fitted, trained) =
                        methods::distil::<BornAgainCnn, _, _, _>(&stage, &previous.student, train, test, options.seed ^ k as u64)?;
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
    let indices: Vec<usize> = (0..test.len()).collect();
    let (mut logits, mut labels) = (vec![Vec::new(); generations.models.len()], Vec::new());
    for chunk in indices.chunks(500) {
        let (x, y) = batch(&dev, test, chunk);
        for (model, out) in generations.models.iter().zip(&mut logits) {
            out.extend(model.student.forward(x.clone()).as_vec());
        }
        labels.extend(y);
    }
    for size in 2..=generations.models.len() {
        let ensemble = ensemble_probabilities(&logits[..size], 10);
        rows.push(Row {
            model: format!("ensemble of generations 0..{}", size - 1),
            test_errors: evaluation_of(&ensemble, &labels).errors,
            seconds: started.elapsed().as_secs_f64(),
            curve: Vec::new(),
        });
    }
    Ok(rows)
}

/// Deep Mutual Learning: the student and teacher CNNs alone, then the two as peers from the same
/// initial weights.
pub fn dml(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    // Each architecture alone.
    let mut small = Cpu::seed_from_u64(options.seed ^ 0xD1).build_module::<StudentAlone, f32>();
    let fitted = train_on_labels(
        &stage("dml_alone_small", options.epochs, train, options),
        &mut small,
        train,
        test,
        options.seed,
    )?;
    rows.push(Row::trained("student CNN alone", &fitted));
    let mut large = Cpu::seed_from_u64(options.seed ^ 0xD2).build_module::<CnnTeacher, f32>();
    let fitted = train_on_labels(
        &stage("dml_alone_large", options.epochs, train, options),
        &mut large,
        train,
        test,
        options.seed,
    )?;
    rows.push(Row::trained("teacher CNN alone", &fitted));

    // The same two, from the same initial weights, learning together.
    let started = Instant::now();
    let mut small = Peer::new(Cpu::seed_from_u64(options.seed ^ 0xD1).build_module::<StudentAlone, f32>(), adam());
    let mut large = Peer::new(Cpu::seed_from_u64(options.seed ^ 0xD2).build_module::<CnnTeacher, f32>(), adam());
    let steps = train.len().div_ceil(BATCH);
    let bar = progress_bar(options.epochs * steps, "dml peers");
    let mut log = Vec::new();
    let mut curves = [Vec::new(), Vec::new()];
    for epoch in 0..options.epochs {
        let lr = learning_rate(epoch, options.epochs);
        small.optimizer.cfg.lr = lr;
        large.optimizer.cfg.lr = lr;
        let dev = Cpu::seed_from_u64(epoch_seed(options.seed, epoch, 1));
        let mut means = [TermMeans::default(), TermMeans::default()];
        for (step, indices) in epoch_order(train.len(), options.seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = batch(&dev, train, indices);
            let terms =
                mutual_step::<_, 10>(&mut [&mut small, &mut large], x, &y, epoch * steps + step).map_err(|e| format!("dml: {e}"))?;
            for (mean, peer_terms) in means.iter_mut().zip(&terms) {
                mean.add(peer_terms, indices.len());
            }
            bar.inc(1);
        }
        let errors = [evaluate(&small.model, &dev, test).errors, evaluate(&large.model, &dev, test).errors];
        for (curve, errors) in curves.iter_mut().zip(errors) {
            curve.push(((epoch + 1) as f64, errors as f64));
        }
        log.push(serde_json::json!({
            "epoch": epoch + 1, "student": means[0].to_json(), "teacher": means[1].to_json(),
            "student_test_errors": errors[0], "teacher_test_errors": errors[1],
        }));
    }
    bar.finish_and_clear();
    write_atomically(
        &options.out.join("dml.metrics.json"),
        serde_json::to_string_pretty(&log)?.as_bytes(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    for (model, curve) in ["student CNN, mutual", "teacher CNN, mutual"].into_iter().zip(curves) {
        rows.push(Row {
            model: model.into(),
            test_errors: curve.last().map_or(0, |p| p.1 as usize),
            seconds,
            curve,
        });
    }
    Ok(rows)
}

/// Trains the BYOT network with (`Some`) or without (`None`) the self-distillation terms.
fn deep_supervision(
    name: &str,
    config: Option<&ByotConfig>,
    options: &Options,
    train: &Split,
    test: &Split,
) -> Result<(Fitted, [usize; 3]), TrainError> {
    let stage = stage(name, options.epochs, train, options);
    let mut network = ByotCnn::build(&Cpu::seed_from_u64(options.seed ^ 0xB7));
    let mut grads = network.alloc_grads();
    let head_errors = |network: &ByotCnn, dev: &Cpu| {
        let mut evaluations = [Evaluation::new(10), Evaluation::new(10), Evaluation::new(10)];
        let indices: Vec<usize> = (0..test.len()).collect();
        for chunk in indices.chunks(500) {
            let (x, y) = batch(dev, test, chunk);
            for (evaluation, logits) in evaluations.iter_mut().zip(network.predict(x)) {
                evaluation.add(&logits.as_vec(), &y);
            }
        }
        evaluations.map(|e| e.errors)
    };
    let fitted = fit(&stage, &mut network, &mut adam(), |epoch, network, optimizer, bar| {
        let lr = learning_rate(epoch, stage.epochs);
        optimizer.cfg.lr = lr;
        let dev = Cpu::seed_from_u64(epoch_seed(options.seed, epoch, 1));
        let mut means = TermMeans::default();
        for (step, indices) in epoch_order(train.len(), options.seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = batch(&dev, train, indices);
            let heads = network.forward_heads(trace_input(x, std::mem::replace(&mut grads, Gradients::leaky())));
            let loss = deep_supervision_loss(heads, &y, config);
            let (terms, next) = kd_core::distill::apply_step(loss, network, optimizer, epoch * stage.steps_per_epoch + step)?;
            grads = next;
            means.add(&terms, indices.len());
            bar.inc(1);
        }
        let errors = head_errors(network, &dev);
        let mut record = means.to_json();
        record.insert("lr".into(), serde_json::json!(lr));
        record.insert("test_errors".into(), serde_json::json!(errors[2]));
        record.insert("head_test_errors".into(), serde_json::json!(errors));
        Ok(record)
    })?;
    // The last epoch's record holds every head's errors (also after a resume that had nothing left).
    let errors = match fitted
        .last("head_test_errors")
        .and_then(|e| serde_json::from_value::<[usize; 3]>(e.clone()).ok())
    {
        Some(errors) => errors,
        None => head_errors(&network, &Cpu::default()),
    };
    Ok((fitted, errors))
}

/// Be Your Own Teacher: `ByotCnn` with deep supervision alone, then with BYOT's terms; one row
/// per head (curves empty).
pub fn byot(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    // The unofficial reference's α and T; λ scaled to this network's 64-wide features.
    let config = ByotConfig {
        alpha: 0.1,
        temperature: 3.0,
        feature_weight: 0.03,
    };
    for (name, label, config) in [("deep_supervision", "deep supervision", None), ("byot", "BYOT", Some(&config))] {
        let (fitted, errors) = deep_supervision(name, config, options, train, test)?;
        for (head, errors) in ["head 1 (after stage 1)", "head 2 (after stage 2)", "deepest head"]
            .iter()
            .zip(errors)
        {
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

/// Runs the generative regime and prints its table: compression against quality.
fn generative_table(options: &Options, train: &Split, test: &Split, dataset: &str) -> Result<serde_json::Value, Error> {
    let outcome = crate::generative::run(options, train, test)?;
    let (rows, noisy_psnr) = (&outcome.rows, outcome.noisy_psnr);
    let terms = rows[2].curve.last().cloned().unwrap_or_default();
    println!(
        "\ngan (denoising, σ = 0.5) on {dataset}: PSNR of 1000 restored test digits (noisy input: {noisy_psnr:.2} dB), {} training images, {} epochs",
        train.len(),
        options.epochs
    );
    println!("| generator | parameters | multiply-adds | PSNR | wall time |\n|---|---:|---:|---:|---:|");
    let (teacher_parameters, teacher_macs) = (rows[0].parameters, rows[0].macs);
    for row in rows {
        println!(
            "| {} | {} ({:.1}× fewer) | {} ({:.1}× fewer) | {:.2} dB | {:.0} s |",
            row.model,
            row.parameters,
            teacher_parameters as f64 / row.parameters as f64,
            row.macs,
            teacher_macs as f64 / row.macs as f64,
            row.psnr,
            row.seconds
        );
    }
    println!("distilled student's last-epoch terms: {}", serde_json::Value::Object(terms.clone()));
    Ok(serde_json::json!({
        "noisy_psnr": noisy_psnr,
        "distilled_terms": terms,
        "models": rows.iter().map(|r| serde_json::json!({"model": r.model, "parameters": r.parameters, "macs": r.macs,
            "psnr": r.psnr, "seconds": r.seconds})).collect::<Vec<_>>(),
    }))
}

/// Runs the language-model regime and prints its table.
fn language_table(options: &Options) -> Result<serde_json::Value, Error> {
    let corpus = kd_core::data::fortunes::load()?;
    eprintln!(
        "fortunes: {} training and {} held-out characters from {} files",
        corpus.train.len(),
        corpus.test.len(),
        corpus.files.len()
    );
    let rows = crate::language::run(&corpus, options)?;
    println!(
        "\nlanguage (character LM on Debian's fortunes): bits per character on held-out text, {} epochs of 300 steps",
        options.epochs
    );
    println!("| model | parameters | bits / char | wall time |\n|---|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.3} | {:.0} s |",
            row.model, row.parameters, row.bits_per_character, row.seconds
        );
    }
    Ok(serde_json::json!(rows
        .iter()
        .map(
            |r| serde_json::json!({"model": r.model, "parameters": r.parameters, "bits_per_character": r.bits_per_character,
            "seconds": r.seconds, "last_terms": r.terms})
        )
        .collect::<Vec<_>>()))
}

/// NetAug: the tiny MLP alone, then trained inside its augmented MLPs.
pub fn netaug(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    use kd_core::regime::netaug::{NetAugMlp, TinyMlp};
    use kd_core::train::supervised_step;
    use rand::{Rng, SeedableRng};

    const EXTRA_WIDTHS: [usize; 3] = [16, 32, 48];
    let mut rows = Vec::new();
    let init = Cpu::seed_from_u64(options.seed ^ 0xA6);

    let stage_alone = stage("netaug_tiny_alone", options.epochs, train, options);
    let mut tiny = init.build_module::<TinyMlp<784, 16, 10>, f32>();
    let mut grads = tiny.alloc_grads();
    let fitted = fit(&stage_alone, &mut tiny, &mut adam(), |epoch, model, optimizer, bar| {
        optimizer.cfg.lr = learning_rate(epoch, options.epochs);
        let dev = Cpu::seed_from_u64(epoch_seed(options.seed, epoch, 1));
        let mut means = TermMeans::default();
        for (step, indices) in epoch_order(train.len(), options.seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = hinton::batch(&dev, train, indices, None);
            let (terms, next) = supervised_step(model, optimizer, x, &y, std::mem::replace(&mut grads, Gradients::leaky()), step)?;
            grads = next;
            means.add(&terms, indices.len());
            bar.inc(1);
        }
        let mut record = means.to_json();
        record.insert("test_errors".into(), serde_json::json!(hinton::evaluate(model, &dev, test).errors));
        Ok(record)
    })?;
    rows.push(Row::trained("tiny 784-16-16-10 alone", &fitted));

    let stage_augmented = stage("netaug", options.epochs, train, options);
    let mut model = NetAugMlp::<784, 16, 48, 10>::build(&Cpu::seed_from_u64(options.seed ^ 0xA6));
    let mut grads = model.alloc_grads();
    let fitted = fit(&stage_augmented, &mut model, &mut adam(), |epoch, model, optimizer, bar| {
        optimizer.cfg.lr = learning_rate(epoch, options.epochs);
        let dev = Cpu::seed_from_u64(epoch_seed(options.seed, epoch, 1));
        let mut widths = rand::rngs::StdRng::seed_from_u64(epoch_seed(options.seed, epoch, 3));
        let mut means = TermMeans::default();
        for (step, indices) in epoch_order(train.len(), options.seed, epoch).chunks(BATCH).enumerate() {
            let (x, y) = hinton::batch(&dev, train, indices, None);
            let extra = EXTRA_WIDTHS[widths.gen_range(0..EXTRA_WIDTHS.len())];
            let loss = model.loss(trace_input(x, std::mem::replace(&mut grads, Gradients::leaky())), &y, extra, 1.0);
            let (terms, next) = kd_core::distill::apply_step(loss, model, optimizer, step)?;
            grads = next;
            means.add(&terms, indices.len());
            bar.inc(1);
        }
        let mut record = means.to_json();
        record.insert(
            "test_errors".into(),
            serde_json::json!(hinton::evaluate(&model.tiny, &dev, test).errors),
        );
        Ok(record)
    })?;
    rows.push(Row::trained(
        "tiny 784-16-16-10 with NetAug (inference: the tiny MLP alone)",
        &fitted,
    ));
    Ok(rows)
}

/// Runs the chosen regimes and prints one table per regime; writes `regimes.json`.
pub fn run(regimes: &[Regime], options: &Options, train: &Split, test: &Split, dataset: &str) -> Result<(), Error> {
    let mut results = serde_json::Map::new();
    for &regime in regimes {
        let name = regime.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        if regime == Regime::Gan {
            results.insert(name, generative_table(options, train, test, dataset)?);
            continue;
        }
        if regime == Regime::Language {
            results.insert(name, language_table(options)?);
            continue;
        }
        let rows = match regime {
            Regime::BornAgain => born_again(options, train, test)?,
            Regime::Dml => dml(options, train, test)?,
            Regime::Byot => byot(options, train, test)?,
            Regime::Netaug => netaug(options, train, test)?,
            Regime::Gan | Regime::Language => unreachable!("handled above"),
        };
        println!(
            "\n{name} on {dataset}: test errors (of {}), {} training images, {} epochs per model, seed {}",
            test.len(),
            train.len(),
            options.epochs,
            options.seed
        );
        println!("| model | test errors | accuracy | wall time |\n|---|---:|---:|---:|");
        for row in &rows {
            println!(
                "| {} | {} | {:.2} % | {:.0} s |",
                row.model,
                row.test_errors,
                100.0 * (1.0 - row.test_errors as f64 / test.len() as f64),
                row.seconds
            );
        }
        results.insert(
            name,
            rows.iter()
                .map(|r| serde_json::json!({"model": r.model, "test_errors": r.test_errors, "seconds": r.seconds}))
                .collect(),
        );
    }
    let path = options.out.join("regimes.json");
    write_atomically(&path, serde_json::to_string_pretty(&results)?.as_bytes())?;
    println!("\nresults: {}", path.display());
    Ok(())
}
