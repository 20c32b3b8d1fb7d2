//! `kd run --regime gan`: GAN Compression-style distillation of an MNIST denoising generator.
//!
//! The task: restore a digit from its copy with Gaussian noise (σ = 0.5, clipped to [0, 1]).
//! Every generator (the teacher, 32/64 channels; the student, 8/16, alone and distilled) learns
//! pix2pix's objective, 100·L1 to the clean image plus the adversarial term of a conditional
//! discriminator that sees the noisy input beside the image, each arm with its own
//! discriminator. The distilled student adds GAN Compression's terms on top
//! (`kd_core::regime::generative::generator_distill_loss`: L1 to the teacher's output and its
//! `enc2` and `dec1` maps through 1×1 adapters), as the paper keeps the original objective. So
//! the arms differ only in the distillation terms. Quality is the PSNR of the restored test
//! digits against the clean ones.

use dfdx::nn::{BuildOnDevice, LoadFromSafetensors, Module, ModuleMut, SaveToSafetensors, TensorCollection};
use dfdx::prelude::*;
use dfdx::shapes::HasShape;
use kd_core::charts::Table;
use kd_core::data::mnist::Split;
use kd_core::distill::{apply_step, StepError};
use kd_core::loss::Term;
use kd_core::models::gan::{Adapters, Discriminator, StudentGenerator, TeacherGenerator, MACS};
use kd_core::regime::generative::{adversarial_loss, discriminator_loss, generator_distill_loss, l1_loss, psnr, GanCompressionConfig};
use kd_core::spatial::trace_input;
use kd_core::tap::{TappedModule, TappedModuleMut};
use kd_core::train::{epoch_seed, run_epochs, Adam, Fitted, Guard, LearningRate, Record, Resumable, Stage};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use crate::recipes::BATCH;
use crate::settings::{Error, Options};
type Images<T = NoneTape> = Tensor<(usize, Const<1>, usize, usize), f32, Cpu, T>;
type Taped = OwnedTape<f32, Cpu>;
type Built<M> = <M as BuildOnDevice<Cpu, f32>>::Built;

const NOISE: f32 = 0.5;
/// pix2pix's weight of the L1 term against the clean image (every arm).
const L1_WEIGHT: f64 = 100.0;
/// The discriminator's input: the noisy image and a clean or restored one, as two channels.
type Pair<T = NoneTape> = Tensor<(usize, Const<2>, usize, usize), f32, Cpu, T>;

/// `image` beside its noisy `input`, for the conditional discriminator (the image's tape kept).
fn conditioned<T: Tape<f32, Cpu> + Merge<NoneTape> + std::fmt::Debug>(input: &Images, image: Images<T>) -> Pair<T> {
    let (batch, _, height, width) = *image.shape();
    let image = image.reshape_like(&(batch, 1usize, height, width));
    let input = input.clone().reshape_like(&(batch, 1usize, height, width));
    (image, input).concat_along(Axis::<1>).realize()
}

/// Clean images in [0, 1] and their noisy copies, the noise fixed by `seed`.
fn pair_of(dev: &Cpu, split: &Split, indices: &[usize], seed: u64) -> (Images, Images) {
    let size = split.height * split.width;
    let clean: Vec<f32> = indices
        .iter()
        .flat_map(|&i| split.pixels[i * size..(i + 1) * size].iter().map(|&p| f32::from(p) / 255.0))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, NOISE).unwrap_or_else(|_| unreachable!("σ = {NOISE} is positive"));
    let noisy: Vec<f32> = clean.iter().map(|&p| (p + normal.sample(&mut rng)).clamp(0.0, 1.0)).collect();
    let shape = (indices.len(), Const, split.height, split.width);
    (dev.tensor_from_vec(clean, shape), dev.tensor_from_vec(noisy, shape))
}

/// The mean PSNR of `restore`'s output, clipped to [0, 1], on the first 1000 test digits (and
/// of the noisy input).
fn quality(test: &Split, restore: impl Fn(Images) -> Images) -> (f64, f64) {
    let dev = Cpu::default();
    let indices: Vec<usize> = (0..test.len().min(1000)).collect();
    let (mut restored, mut noisy_psnr) = (0.0, 0.0);
    for chunk in indices.chunks(250) {
        let (clean, noisy) = pair_of(&dev, test, chunk, 0xC1EA ^ chunk[0] as u64);
        let clean = clean.as_vec();
        noisy_psnr += psnr(&noisy.as_vec(), &clean) * chunk.len() as f64;
        let output: Vec<f32> = restore(noisy).as_vec().into_iter().map(|p| p.clamp(0.0, 1.0)).collect();
        restored += psnr(&output, &clean) * chunk.len() as f64;
    }
    (restored / indices.len() as f64, noisy_psnr / indices.len() as f64)
}

fn adam() -> Adam {
    // pix2pix's β₁ = 0.5; a larger rate than its 2e-4 for this short schedule.
    Adam::new(AdamConfig {
        lr: 1e-3,
        betas: [0.5, 0.999],
        ..Default::default()
    })
}

/// One discriminator update on clean images against `fake` (detached), each beside `noisy`.
fn discriminator_step(
    discriminator: &mut Built<Discriminator>,
    optimizer: &mut Adam,
    noisy: &Images,
    clean: Images,
    fake: Images,
    step: usize,
) -> Result<Vec<Term>, StepError> {
    let grads = discriminator.alloc_grads();
    let real_logits = discriminator.forward_mut(trace_input(conditioned(noisy, clean), grads));
    let (real_logits, tape) = real_logits.split_tape();
    let fake_logits = discriminator.forward_mut(conditioned(noisy, fake).put_tape(tape));
    let (fake_logits, tape) = fake_logits.split_tape();
    let (real_logits, fake_logits) = (real_logits.put_tape(tape), fake_logits.retaped::<Taped>());
    let loss = discriminator_loss(real_logits, fake_logits).map_err(StepError::loss(step))?;
    let (terms, _) = apply_step(loss, discriminator, optimizer, step)?;
    Ok(terms)
}

/// Per-epoch mean loss terms, one map per epoch.
pub type TermCurve = Vec<serde_json::Map<String, serde_json::Value>>;

/// The epochs both generator trainings share, a generator `G` (with whatever it trains beside
/// it) and its discriminator through the epoch runner: per batch, clean images and noisy copies
/// (the noise seeded by the step), and `step(clean, noisy, generator, discriminator, optimizers,
/// step)` making the discriminator's and the generator's updates and returning their terms.
fn gan_epochs<G>(
    name: &str,
    generator: &mut G,
    options: &Options,
    train: &Split,
    mut step: impl FnMut(Images, Images, &mut G, &mut Built<Discriminator>, &mut (Adam, Adam), usize) -> Result<Vec<Term>, StepError>,
    discriminator_seed: u64,
) -> Result<(f64, TermCurve), Error>
where
    (G, Built<Discriminator>): TensorCollection<f32, Cpu> + SaveToSafetensors<f32, Cpu> + LoadFromSafetensors<f32, Cpu>,
    (Adam, Adam): Resumable<(G, Built<Discriminator>)> + LearningRate,
    G: Clone,
{
    let stage = Stage {
        name,
        out: &options.out,
        epochs: options.epochs,
        resume: options.resume,
        samples: train.len(),
        batch_size: BATCH,
        seed: options.seed,
        learning_rate: None,
        guard: Guard::default(),
    };
    let discriminator = Cpu::seed_from_u64(options.seed ^ discriminator_seed).build_module::<Discriminator, f32>();
    let mut pair = (generator.clone(), discriminator);
    let fitted: Fitted = run_epochs(
        &stage,
        &mut pair,
        &mut (adam(), adam()),
        |epoch, batch, (generator, discriminator), optimizers, grads| {
            let (clean, noisy) = pair_of(&epoch.dev, train, batch.indices, epoch_seed(options.seed, batch.step, 4));
            Ok((step(clean, noisy, generator, discriminator, optimizers, batch.step)?, grads))
        },
        |_, _| Ok(Record::new()),
    )?;
    *generator = pair.0;
    let curve = fitted.records.iter().filter_map(|r| r.as_object().cloned()).collect();
    Ok((fitted.seconds, curve))
}

/// A generator trained with pix2pix's objective (L1 to the clean image + adversarial); returns
/// the wall time and the generator's and discriminator's terms per epoch.
fn train_pix2pix<G>(name: &str, generator: &mut G, options: &Options, train: &Split) -> Result<(f64, TermCurve), Error>
where
    G: ModuleMut<Images<Taped>, Output = Images<Taped>> + TensorCollection<f32, Cpu> + Clone,
    Adam: dfdx::optim::Optimizer<G, Cpu, f32>,
    (G, Built<Discriminator>): TensorCollection<f32, Cpu> + SaveToSafetensors<f32, Cpu> + LoadFromSafetensors<f32, Cpu>,
    (Adam, Adam): Resumable<(G, Built<Discriminator>)>,
{
    gan_epochs(
        name,
        generator,
        options,
        train,
        |clean, noisy, generator, discriminator, (g_opt, d_opt), step| {
            let fake = generator.forward_mut(trace_input(noisy.clone(), generator.alloc_grads()));
            let (fake, tape) = fake.split_tape();
            let d_terms = discriminator_step(discriminator, d_opt, &noisy, clean.clone(), fake.clone(), step)?;
            let fake_logits = discriminator.forward(conditioned(&noisy, fake.clone().put_tape(tape)));
            let (fake_logits, tape) = fake_logits.split_tape();
            let l1 = l1_loss(fake.put_tape(tape), clean).map_err(StepError::loss(step))?;
            let gan = adversarial_loss(fake_logits.retaped::<Taped>()).map_err(StepError::loss(step))?;
            let loss = kd_core::loss::LossTerms::new().add("l1", L1_WEIGHT, l1).add("gan", 1.0, gan);
            let (mut terms, _) = apply_step(loss, generator, g_opt, step)?;
            terms.extend(d_terms);
            Ok(terms)
        },
        0xD15C,
    )
}

/// A feature map as `(batch, values)`: the feature terms are means over elements, so their
/// values do not change, and maps of different widths share one type.
fn flat<S: Shape, T: Tape<f32, Cpu>>(map: Tensor<S, f32, Cpu, T>) -> Tensor<(usize, usize), f32, Cpu, T> {
    let shape = map.shape().concrete();
    let batch = shape.into_iter().next().unwrap_or(0);
    let values = map.shape().num_elements() / batch.max(1);
    map.reshape_like(&(batch, values))
}

/// The student generator distilled from the teacher (GAN Compression's objective).
fn distil(
    student: &mut (Built<StudentGenerator>, Built<Adapters>),
    teacher: &Built<TeacherGenerator>,
    options: &Options,
    train: &Split,
) -> Result<(f64, TermCurve), Error> {
    let config = GanCompressionConfig::default();
    gan_epochs(
        "generator_distilled",
        student,
        options,
        train,
        |clean, noisy, student, discriminator, (g_opt, d_opt), step| {
            let forward_failed = |model: &str, e: &dyn std::fmt::Debug| StepError::Update {
                step,
                message: format!("{model}'s forward pass failed: {e:?}"),
            };
            let (teacher_output, teacher_taps) = teacher
                .try_forward_tapped(noisy.clone())
                .map_err(|e| forward_failed("teacher generator", &e))?;
            let grads = student.alloc_grads();
            let (generator, adapters) = &mut *student;
            let (fake, taps) = generator
                .try_forward_tapped_mut(trace_input(noisy.clone(), grads))
                .map_err(|e| forward_failed("student generator", &e))?;
            let (fake, tape) = fake.split_tape();
            let d_terms = discriminator_step(discriminator, d_opt, &noisy, clean.clone(), fake.clone(), step)?;
            // pix2pix's terms, as every arm has them: L1 to the clean image, the conditional
            // discriminator's verdict on (noisy, fake).
            let fake_logits = discriminator.forward(conditioned(&noisy, fake.clone().put_tape(tape)));
            let (fake_logits, tape) = fake_logits.split_tape();
            let l1 = l1_loss(fake.clone().put_tape(tape), clean).map_err(StepError::loss(step))?;
            let (l1, tape) = l1.split_tape();
            let enc2 = adapters.0.forward(taps.enc2.retaped::<Taped>());
            let dec1 = adapters.1.forward(taps.dec1.retaped::<Taped>());
            let features = vec![
                ("distill.enc2", flat(enc2), flat(teacher_taps.enc2)),
                ("distill.dec1", flat(dec1), flat(teacher_taps.dec1)),
            ];
            let loss = generator_distill_loss(
                fake.put_tape(tape),
                teacher_output,
                features,
                fake_logits.retaped::<Taped>(),
                &config,
            )
            .map_err(StepError::loss(step))?
            .add("l1", L1_WEIGHT, l1.retaped::<Taped>());
            let (mut terms, _) = apply_step(loss, student, g_opt, step)?;
            terms.extend(d_terms);
            Ok(terms)
        },
        0xD15D,
    )
}
/// One result row.
pub struct Row {
    /// Which generator.
    pub model: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Multiply-adds per 28 × 28 image.
    pub macs: usize,
    /// Mean PSNR of its restorations of the first 1,000 test digits, in dB.
    pub psnr: f64,
    /// Training wall time.
    pub seconds: f64,
    /// Its mean loss terms per epoch, the discriminator's `d_real` and `d_fake` among them.
    pub curve: TermCurve,
}

/// What the generative regime measured.
pub struct Outcome {
    /// Teacher, student alone, student distilled.
    pub rows: Vec<Row>,
    /// PSNR of the noisy inputs themselves.
    pub noisy_psnr: f64,
    /// The first [`SAMPLES`] test digits: clean, noisy, and each row's restoration, as
    /// 28 × 28 images in [0, 1].
    pub samples: Vec<(String, Vec<Vec<f32>>)>,
}

/// How many test digits [`Outcome::samples`] shows.
pub const SAMPLES: usize = 8;

/// Trains teacher, student alone and distilled student; returns their rows and samples.
pub fn run(options: &Options, train: &Split, test: &Split) -> Result<Outcome, Error> {
    use dfdx::nn::NumParams;
    let dev = Cpu::seed_from_u64(options.seed ^ 0x6A);
    let mut teacher = dev.build_module::<TeacherGenerator, f32>();
    let (teacher_seconds, teacher_curve) = train_pix2pix("teacher_generator", &mut teacher, options, train)?;
    let mut alone = dev.build_module::<StudentGenerator, f32>();
    let (alone_seconds, alone_curve) = train_pix2pix("student_generator_alone", &mut alone, options, train)?;
    let mut distilled = (dev.build_module::<StudentGenerator, f32>(), dev.build_module::<Adapters, f32>());
    let (distilled_seconds, distilled_curve) = distil(&mut distilled, &teacher, options, train)?;

    let (teacher_psnr, noisy_psnr) = quality(test, |x| teacher.forward(x));
    let (alone_psnr, _) = quality(test, |x| alone.forward(x));
    let (distilled_psnr, _) = quality(test, |x| distilled.0.forward(x));
    let rows = vec![
        Row {
            model: "teacher generator (32/64 channels)".into(),
            parameters: teacher.num_trainable_params(),
            macs: MACS.0,
            psnr: teacher_psnr,
            seconds: teacher_seconds,
            curve: teacher_curve,
        },
        Row {
            model: "student generator alone (8/16)".into(),
            parameters: alone.num_trainable_params(),
            macs: MACS.1,
            psnr: alone_psnr,
            seconds: alone_seconds,
            curve: alone_curve,
        },
        Row {
            model: "student generator distilled".into(),
            parameters: distilled.0.num_trainable_params(),
            macs: MACS.1,
            psnr: distilled_psnr,
            seconds: distilled_seconds,
            curve: distilled_curve,
        },
    ];
    let indices: Vec<usize> = (0..SAMPLES.min(test.len())).collect();
    let (clean, noisy) = pair_of(&Cpu::default(), test, &indices, 0xC1EA);
    let images = |batch: Images| -> Vec<Vec<f32>> {
        let values: Vec<f32> = batch.as_vec().into_iter().map(|p| p.clamp(0.0, 1.0)).collect();
        values.chunks(test.height * test.width).map(<[f32]>::to_vec).collect()
    };
    let samples = vec![
        ("clean".to_string(), images(clean)),
        ("noisy (σ = 0.5)".to_string(), images(noisy.clone())),
        ("teacher".to_string(), images(teacher.forward(noisy.clone()))),
        ("student alone".to_string(), images(alone.forward(noisy.clone()))),
        ("student distilled".to_string(), images(distilled.0.forward(noisy))),
    ];
    Ok(Outcome { rows, noisy_psnr, samples })
}

/// The generative regime's table (compression against quality) and its JSON.
pub fn report(outcome: &Outcome, train: &Split, options: &Options, dataset: &str) -> (Table, serde_json::Value) {
    let rows = &outcome.rows;
    let mut table = Table::new(["generator", "parameters", "multiply-adds", "PSNR", "wall time"]);
    let (teacher_parameters, teacher_macs) = rows.first().map_or((1, 1), |r| (r.parameters, r.macs));
    for row in rows {
        table.row([
            row.model.clone(),
            format!(
                "{} ({:.1}× fewer)",
                row.parameters,
                teacher_parameters as f64 / row.parameters as f64
            ),
            format!("{} ({:.1}× fewer)", row.macs, teacher_macs as f64 / row.macs as f64),
            format!("{:.2} dB", row.psnr),
            format!("{:.0} s", row.seconds),
        ]);
    }
    let json = serde_json::json!({
        "dataset": dataset,
        "train_images": train.len(),
        "epochs": options.epochs,
        "noisy_psnr": outcome.noisy_psnr,
        "models": rows.iter().map(|r| serde_json::json!({"model": r.model, "parameters": r.parameters, "macs": r.macs,
            "psnr": r.psnr, "seconds": r.seconds, "last_terms": r.curve.last()})).collect::<Vec<_>>(),
    });
    (table, json)
}
