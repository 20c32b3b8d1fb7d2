//! `kd bench`: what a distillation step costs, against the machine's matrix-multiply peak, a
//! hand-written dfdx step of the same maths, the student trained alone, and PyTorch.
//!
//! Every figure is the median of timed steps after warm-up, measured in one process on one
//! machine; the compared steps (kd's and PyTorch's) are measured in five interleaved rounds and
//! keep their fastest round, since a shared machine's speed drifts. Ratios are what the targets
//! are about; absolute times are for context.

use std::path::{Path, PathBuf};
use std::time::Instant;

use dfdx::nn::ZeroGrads;
use dfdx::optim::{Momentum, Optimizer, Sgd, SgdConfig};
use dfdx::prelude::*;
use kd_core::distill::{distill_step, distill_step_from_logits, Distill, DistillFromLogits};
use kd_core::files::{write_atomically, FileError};
use kd_core::loss::{at_loss, hint_loss, kd_with_ce_loss, AtConvention, Conv1x1Adapter, KdConfig, LossTerms};
use kd_core::nn::builders::{Conv2D, Flatten2D, Linear, MaxPool2D};
use kd_core::spatial::trace_input;
use kd_core::tap::tap;
use kd_core::train::{supervised_step, TeacherCache};

use kd_experiments::inputs::Images;
use kd_experiments::models::{CnnTeacher, FitnetAtStudent, HintonStudent, HintonStudentAlone, HintonTeacher};

type Error = Box<dyn std::error::Error>;
type Tape = OwnedTape<f32, Cpu>;

/// `kd bench`'s settings.
pub struct Options {
    /// Fewer steps (a smoke run; the ratios are noisier).
    pub quick: bool,
    /// Where `bench.json` goes.
    pub out: PathBuf,
    /// The Python with torch for the comparison, if any.
    pub python: Option<String>,
}

/// Median milliseconds of `f` over `steps` calls after `warmup` calls.
fn median_ms(warmup: usize, steps: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times.get(times.len() / 2).copied().unwrap_or(f64::NAN))
}

/// An optimiser failure as a bench error.
fn update_failed(error: impl std::fmt::Debug) -> Error {
    format!("optimiser update failed: {error:?}").into()
}

/// Peak resident memory since the last reset, in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak-memory mark to the current use (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Counts {
    warmup: usize,
    steps: usize,
}

/// One row of the results.
struct Row {
    workload: &'static str,
    what: String,
    ms: f64,
    gflops: Option<f64>,
    peak_mib: Option<f64>,
}

impl Row {
    /// A row for a step of `flops` that took `ms`, with the peak memory since the last reset.
    fn measured(workload: &'static str, what: &str, ms: f64, flops: f64) -> Self {
        Row {
            workload,
            what: what.to_string(),
            ms,
            gflops: Some(flops / (ms * 1e6)),
            peak_mib: peak_rss_mib(),
        }
    }
}

fn linear_flops(batch: usize, layers: &[(usize, usize)]) -> f64 {
    layers.iter().map(|&(i, o)| 2.0 * (batch * i * o) as f64).sum()
}

const TEACHER_LAYERS: [(usize, usize); 3] = [(784, 1200), (1200, 1200), (1200, 10)];
const STUDENT_LAYERS: [(usize, usize); 3] = [(784, 800), (800, 800), (800, 10)];

/// The step's optimiser. Benchmarks repeat one batch, so a small rate keeps them finite; the
/// cost of a step does not depend on it.
fn sgd() -> SgdConfig {
    SgdConfig {
        lr: 1e-3,
        momentum: Some(Momentum::Classic(0.9)),
        weight_decay: None,
    }
}

/// The practical peak: a 2048³ single-precision product, through the faster of dfdx's `matmul`
/// (gemm 0.15) and kd's `Linear` (gemm 0.19, AVX-512), so no step can read above 100 %.
fn matmul_peak(dev: &Cpu, counts: &Counts) -> Result<f64, Error> {
    const N: usize = 2048;
    let flops = 2.0 * (N * N * N) as f64;
    let a: Tensor<(usize, usize), f32, _> = dev.sample_normal_like(&(N, N));
    let b: Tensor<(usize, usize), f32, _> = dev.sample_normal_like(&(N, N));
    let dfdx_ms = median_ms(1, counts.steps.min(5), || {
        let _ = a.clone().matmul(b.clone());
        Ok(())
    })?;
    let layer = dev.build_module::<Linear<N, N>, f32>();
    let x: Tensor<(usize, Const<N>), f32, _> = dev.sample_normal_like(&(N, Const));
    let kd_ms = median_ms(1, counts.steps.min(5), || {
        let _ = layer.forward(x.clone());
        Ok(())
    })?;
    Ok(flops / (dfdx_ms.min(kd_ms) * 1e6))
}

/// The Hinton pair written by hand in dfdx: the same layers as `HintonTeacher` and `HintonStudent`
/// (dropout is the identity outside training), the same loss functions and optimiser.
type HandTeacher = ((Linear<784, 1200>, ReLU), (Linear<1200, 1200>, ReLU), Linear<1200, 10>);
type HandStudent = ((Linear<784, 800>, ReLU), (Linear<800, 800>, ReLU), Linear<800, 10>);

fn hinton_rows(dev: &Cpu, batch: usize, counts: &Counts, rows: &mut Vec<Row>) -> Result<(), Error> {
    let x: Tensor<(usize, Const<784>), f32, _> = dev.sample_normal_like(&(batch, Const));
    let y: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let kd_flops = 3.0 * linear_flops(batch, &STUDENT_LAYERS) + linear_flops(batch, &TEACHER_LAYERS);
    let alone_flops = 3.0 * linear_flops(batch, &STUDENT_LAYERS);
    let workload = "hinton mlp";

    reset_peak_rss();
    let teacher = dev.build_module::<HintonTeacher, f32>();
    let mut distiller = HintonStudent::build_distiller(dev);
    let mut opt = Sgd::new(&distiller, sgd());
    let mut grads = Some(distiller.alloc_grads());
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let (_, next) = distill_step::<HintonStudent, _>(&mut distiller, &teacher, &mut opt, x.clone(), &y, g, 0)?;
        grads = Some(next);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "KD step, #[distill]", ms, kd_flops));

    reset_peak_rss();
    let hand_teacher = dev.build_module::<HandTeacher, f32>();
    let mut student = dev.build_module::<HandStudent, f32>();
    let mut opt = Sgd::new(&student, sgd());
    let mut grads = Some(student.alloc_grads());
    let config = KdConfig {
        temperature: 20.0,
        ce_weight: 0.1,
        kd_weight: 0.9,
        ..Default::default()
    };
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let teacher_logits = hand_teacher.forward(x.clone());
        let student_logits = student.forward_mut(trace_input(x.clone(), g));
        let mut g = kd_with_ce_loss(student_logits, teacher_logits, &y, &config)?
            .into_total()
            .backward();
        opt.update(&mut student, &g).map_err(update_failed)?;
        student.zero_grads(&mut g);
        grads = Some(g);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "KD step, hand-written dfdx", ms, kd_flops));

    reset_peak_rss();
    let logits = HintonStudent::teacher_logits(&teacher, x.clone());
    let mut distiller = HintonStudent::build_distiller(dev);
    let mut opt = Sgd::new(&distiller, sgd());
    let mut grads = Some(distiller.alloc_grads());
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let (_, next) = distill_step_from_logits::<HintonStudent, _>(&mut distiller, logits.clone(), &mut opt, x.clone(), &y, g, 0)?;
        grads = Some(next);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "KD step, cached teacher logits", ms, alone_flops));

    reset_peak_rss();
    let mut alone = dev.build_module::<HintonStudentAlone, f32>();
    let mut opt = Sgd::new(&alone, sgd());
    let mut grads = Some(alone.alloc_grads());
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let (_, next) = supervised_step(&mut alone, &mut opt, x.clone(), &y, g, 0)?;
        grads = Some(next);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "student alone step (CE)", ms, alone_flops));

    // The same student on dfdx's own `Linear` (gemm 0.15, AVX2 kernels).
    reset_peak_rss();
    type DfdxStudent = (
        (dfdx::nn::builders::Linear<784, 800>, ReLU),
        (dfdx::nn::builders::Linear<800, 800>, ReLU),
        dfdx::nn::builders::Linear<800, 10>,
    );
    let mut alone = dev.build_module::<DfdxStudent, f32>();
    let mut opt = Sgd::new(&alone, sgd());
    let mut grads = Some(alone.alloc_grads());
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let (_, next) = supervised_step(&mut alone, &mut opt, x.clone(), &y, g, 0)?;
        grads = Some(next);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "student alone step, dfdx's Linear", ms, alone_flops));

    // kd-core's resumable SGD copies the gradients once per update (dfdx hides the borrow).
    let mut alone = dev.build_module::<HintonStudentAlone, f32>();
    let mut opt = kd_core::train::Sgd::new(sgd());
    let mut grads = Some(alone.alloc_grads());
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let (_, next) = supervised_step(&mut alone, &mut opt, x.clone(), &y, g, 0)?;
        grads = Some(next);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "student alone step, resumable SGD", ms, alone_flops));
    Ok(())
}

/// A KD epoch from the teacher cache against an epoch of the student alone, each over
/// `batches` batches gathered from an in-memory training set, as `kd demo` does.
fn epoch_ratio(dev: &Cpu, batch: usize, batches: usize) -> Result<(f64, f64), Error> {
    let samples = batch * batches;
    let pixels: Vec<f32> = dev.sample_normal_like::<(usize, Const<784>)>(&(samples, Const)).as_vec();
    let labels: Vec<usize> = (0..samples).map(|i| i % 10).collect();
    let teacher = dev.build_module::<HintonTeacher, f32>();
    let input = |indices: &[usize]| {
        let data: Vec<f32> = indices
            .iter()
            .flat_map(|&i| pixels[i * 784..(i + 1) * 784].iter().copied())
            .collect();
        dev.tensor_from_vec(data, (indices.len(), Const::<784>))
    };
    let cache = TeacherCache::build(samples, 10, 1000, |indices| {
        HintonStudent::teacher_logits(&teacher, input(indices)).as_vec()
    });
    let order: Vec<usize> = kd_core::train::epoch_order(samples, 0, 0);

    let mut distiller = HintonStudent::build_distiller(dev);
    let mut opt = Sgd::new(&distiller, sgd());
    let mut grads = distiller.alloc_grads();
    let started = Instant::now();
    for (step, indices) in order.chunks(batch).enumerate() {
        let teacher_logits = dev.tensor_from_vec(cache.gather(indices), (indices.len(), Const));
        let y: Vec<usize> = indices.iter().map(|&i| labels[i]).collect();
        let (_, next) =
            distill_step_from_logits::<HintonStudent, _>(&mut distiller, teacher_logits, &mut opt, input(indices), &y, grads, step)?;
        grads = next;
    }
    let kd = started.elapsed().as_secs_f64();

    let mut alone = dev.build_module::<HintonStudentAlone, f32>();
    let mut opt = Sgd::new(&alone, sgd());
    let mut grads = alone.alloc_grads();
    let started = Instant::now();
    for (step, indices) in order.chunks(batch).enumerate() {
        let y: Vec<usize> = indices.iter().map(|&i| labels[i]).collect();
        let (_, next) = supervised_step(&mut alone, &mut opt, input(indices), &y, grads, step)?;
        grads = next;
    }
    Ok((kd, started.elapsed().as_secs_f64()))
}

/// The CNN pair's student written by hand: the layers of `FitnetAtStudent` split at
/// the two paired convolutions.
type HandCnnStudent = (
    Conv2D<1, 16, 3, 1, 1>,
    (ReLU, MaxPool2D<2, 2>),
    Conv2D<16, 32, 3, 1, 1>,
    (ReLU, MaxPool2D<2, 2>, Flatten2D<1568>, Linear<1568, 64>, ReLU, Linear<64, 10>),
);
type HandCnnTeacher = (
    (Conv2D<1, 16, 3, 1, 1>, ReLU, Conv2D<16, 16, 3, 1, 1>),
    (ReLU, MaxPool2D<2, 2>, Conv2D<16, 32, 3, 1, 1>, ReLU, Conv2D<32, 32, 3, 1, 1>),
    (ReLU, MaxPool2D<2, 2>, Flatten2D<1568>, Linear<1568, 128>, ReLU, Linear<128, 10>),
);

fn conv_flops(batch: usize, convs: &[(usize, usize, usize)]) -> f64 {
    convs
        .iter()
        .map(|&(cin, cout, hw)| 2.0 * (batch * cin * cout * 9 * hw * hw) as f64)
        .sum()
}

fn cnn_rows(dev: &Cpu, batch: usize, counts: &Counts, rows: &mut Vec<Row>) -> Result<(), Error> {
    let x: Images = dev.sample_normal_like(&(batch, Const, 28, 28));
    let y: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let student = conv_flops(batch, &[(1, 16, 28), (16, 32, 14)]) + linear_flops(batch, &[(1568, 64), (64, 10)]);
    let teacher =
        conv_flops(batch, &[(1, 16, 28), (16, 16, 28), (16, 32, 14), (32, 32, 14)]) + linear_flops(batch, &[(1568, 128), (128, 10)]);
    let flops = 3.0 * student + teacher;
    let workload = "cnn fitnet+at";

    reset_peak_rss();
    let cnn_teacher = dev.build_module::<CnnTeacher, f32>();
    let mut distiller = FitnetAtStudent::build_distiller(dev);
    let mut opt = Sgd::new(&distiller, sgd());
    let mut grads = Some(distiller.alloc_grads());
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let (_, next) = distill_step::<FitnetAtStudent, _>(&mut distiller, &cnn_teacher, &mut opt, x.clone(), &y, g, 0)?;
        grads = Some(next);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "KD+hint+AT step, #[distill]", ms, flops));

    reset_peak_rss();
    let hand_teacher = dev.build_module::<HandCnnTeacher, f32>();
    let mut model = dev.build_module::<(HandCnnStudent, (Conv1x1Adapter<16, 16>, Conv1x1Adapter<32, 32>)), f32>();
    let mut opt = Sgd::new(&model, sgd());
    let mut grads = Some(model.alloc_grads());
    let config = KdConfig {
        temperature: 4.0,
        ..Default::default()
    };
    let weights = kd_core::distill::weights::HINT;
    let ms = median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let t1 = hand_teacher.0.forward(x.clone());
        let t2 = hand_teacher.1.forward(t1.clone());
        let teacher_logits = hand_teacher.2.forward(t2.clone());
        let (student, adapters) = &mut model;
        let (s1_value, s1) = tap(student.0.forward_mut(trace_input(x.clone(), g)));
        let (s2_value, s2) = tap(student.2.forward_mut(student.1.forward_mut(s1)));
        let logits = student.3.forward_mut(s2);
        let attention = kd_core::distill::weights::ATTENTION;
        let loss: LossTerms<f32, Cpu, Tape> = kd_with_ce_loss(logits, teacher_logits, &y, &config)?
            .add(
                "hint.conv1",
                weights,
                hint_loss(adapters.0.forward(s1_value.retaped::<Tape>()), t1.clone())?,
            )
            .add(
                "hint.conv2",
                weights,
                hint_loss(adapters.1.forward(s2_value.retaped::<Tape>()), t2.clone())?,
            )
            .add(
                "attention.conv1",
                attention,
                at_loss(s1_value.retaped::<Tape>(), t1, 2.0, AtConvention::AuthorsCode)?,
            )
            .add(
                "attention.conv2",
                attention,
                at_loss(s2_value.retaped::<Tape>(), t2, 2.0, AtConvention::AuthorsCode)?,
            );
        let mut g = loss.into_total().backward();
        opt.update(&mut model, &g).map_err(update_failed)?;
        model.zero_grads(&mut g);
        grads = Some(g);
        Ok(())
    })?;
    rows.push(Row::measured(workload, "KD+hint+AT step, hand-written dfdx", ms, flops));
    Ok(())
}

/// KD step time of a hand-built `784-W-W-10` student (for the width scaling table).
fn width_step<const W: usize>(dev: &Cpu, batch: usize, counts: &Counts) -> Result<f64, Error> {
    let teacher = dev.build_module::<HandTeacher, f32>();
    let mut student = dev.build_module::<((Linear<784, W>, ReLU), (Linear<W, W>, ReLU), Linear<W, 10>), f32>();
    let x: Tensor<(usize, Const<784>), f32, _> = dev.sample_normal_like(&(batch, Const));
    let y: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let mut opt = Sgd::new(&student, sgd());
    let mut grads = Some(student.alloc_grads());
    median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let teacher_logits = teacher.forward(x.clone());
        let logits = student.forward_mut(trace_input(x.clone(), g));
        let mut g = kd_with_ce_loss(logits, teacher_logits, &y, &KdConfig::default())?
            .into_total()
            .backward();
        opt.update(&mut student, &g).map_err(update_failed)?;
        student.zero_grads(&mut g);
        grads = Some(g);
        Ok(())
    })
}

/// KD step time of the `#[distill]` Hinton pair at `batch`.
fn batch_step(dev: &Cpu, batch: usize, counts: &Counts) -> Result<f64, Error> {
    let teacher = dev.build_module::<HintonTeacher, f32>();
    let mut distiller = HintonStudent::build_distiller(dev);
    let x: Tensor<(usize, Const<784>), f32, _> = dev.sample_normal_like(&(batch, Const));
    let y: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let mut opt = Sgd::new(&distiller, sgd());
    let mut grads = Some(distiller.alloc_grads());
    median_ms(counts.warmup, counts.steps, || {
        let g = grads.take().unwrap_or_else(Gradients::leaky);
        let (_, next) = distill_step::<HintonStudent, _>(&mut distiller, &teacher, &mut opt, x.clone(), &y, g, 0)?;
        grads = Some(next);
        Ok(())
    })
}

/// PyTorch's times for the same workloads, from the committed script, if torch imports.
fn torch_times(python: &str, quick: bool) -> Result<serde_json::Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/kd_step_torch.py");
    let output = std::process::Command::new(python)
        .arg(&script)
        .args(if quick { vec!["--quick"] } else { vec![] })
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
            .to_string());
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("{}: not JSON: {e}", script.display()))
}

/// Merges a round's rows into `best`: each step keeps its fastest round (and the highest peak
/// memory seen).
fn keep_fastest(best: &mut Vec<Row>, round: Vec<Row>) {
    for row in round {
        match best.iter_mut().find(|b| b.workload == row.workload && b.what == row.what) {
            Some(kept) => {
                let peak = match (kept.peak_mib, row.peak_mib) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                if row.ms < kept.ms {
                    *kept = row;
                }
                kept.peak_mib = peak;
            }
            None => best.push(row),
        }
    }
}

/// PyTorch's times over rounds: the fastest of each step.
fn fastest_torch(kept: Option<serde_json::Value>, mut round: serde_json::Value) -> serde_json::Value {
    if let Some(kept) = kept {
        for key in TORCH_STEPS {
            if let (Some(old), Some(new)) = (kept[key].as_f64(), round[key].as_f64()) {
                round[key] = old.min(new).into();
            }
        }
    }
    round
}

/// The step times `kd_step_torch.py` reports.
const TORCH_STEPS: [&str; 3] = ["hinton_kd_step_ms", "hinton_cached_kd_step_ms", "cnn_fitnet_at_step_ms"];

fn find_torch(explicit: Option<&str>) -> Option<String> {
    let candidates: Vec<String> = match explicit {
        Some(python) => vec![python.to_string()],
        None => vec!["python3".to_string()],
    };
    candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// What a measured ratio must reach.
#[derive(Clone, Copy)]
enum Target {
    /// At most this (a time against another's).
    AtMost(f64),
    /// At least this (a share of the matmul peak).
    AtLeast(f64),
    /// Shown for context only.
    None,
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(target) => ratio <= target,
            Target::AtLeast(target) => ratio >= target,
            Target::None => !ratio.is_nan(),
        }
    }

    fn value(self) -> Option<f64> {
        match self {
            Target::AtMost(target) | Target::AtLeast(target) => Some(target),
            Target::None => None,
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}

/// Runs every measurement and prints the tables; writes `bench.json`.
pub fn run(options: &Options) -> Result<(), Error> {
    // Fail before minutes of measuring, not after, when the results cannot be written.
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(FileError::at(out, "create the output folder"))?;
    let probe = out.join(".kd-write-check");
    write_atomically(&probe, b"")?;
    std::fs::remove_file(&probe).map_err(FileError::at(&probe, "delete"))?;
    let counts = if options.quick {
        Counts { warmup: 1, steps: 3 }
    } else {
        Counts { warmup: 5, steps: 30 }
    };
    let unpacked_columns = kd_core::spatial::unpacked_lhs_columns();
    let dev = Cpu::seed_from_u64(0);
    let threads = rayon::current_num_threads();
    eprintln!(
        "measuring ({} warm-up + {} timed steps per figure, {threads} threads)",
        counts.warmup, counts.steps
    );
    let peak = matmul_peak(&dev, &counts)?;
    let python = find_torch(options.python.as_deref());
    if python.is_none() {
        eprintln!("PyTorch comparison skipped: `import torch` fails (set --python to a Python with torch)");
    }
    // The machine's speed drifts by 10–30 % over a minute (a shared VM), so the compared steps
    // are measured in five interleaved rounds, kd's and PyTorch's alike, and each keeps its
    // fastest round's median.
    let rounds = if options.quick { 1 } else { 5 };
    let mut rows: Vec<Row> = Vec::new();
    let mut torch: Option<serde_json::Value> = None;
    for round in 1..=rounds {
        eprintln!(
            "round {round}/{rounds}: Hinton pair, CNN pair{}",
            if python.is_some() { ", PyTorch" } else { "" }
        );
        let mut measured = Vec::new();
        hinton_rows(&dev, 128, &counts, &mut measured)?;
        cnn_rows(&dev, 64, &counts, &mut measured)?;
        keep_fastest(&mut rows, measured);
        if let Some(python) = &python {
            match torch_times(python, options.quick) {
                Ok(times) => torch = Some(fastest_torch(torch, times)),
                Err(e) => eprintln!("PyTorch comparison skipped this round: {e}"),
            }
        }
    }
    // The two epochs alternate, and each keeps its fastest run, as the steps above do.
    let (mut kd_epoch, mut alone_epoch) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds.min(3) {
        let (kd, alone) = epoch_ratio(&dev, 128, if options.quick { 5 } else { 100 })?;
        (kd_epoch, alone_epoch) = (kd_epoch.min(kd), alone_epoch.min(alone));
    }

    let mut batches = Vec::new();
    for batch in [32, 64, 128, 256, 512] {
        batches.push((batch, batch_step(&dev, batch, &counts)?));
    }
    let widths: Vec<(usize, f64)> = vec![
        (100, width_step::<100>(&dev, 128, &counts)?),
        (200, width_step::<200>(&dev, 128, &counts)?),
        (400, width_step::<400>(&dev, 128, &counts)?),
        (800, width_step::<800>(&dev, 128, &counts)?),
        (1600, width_step::<1600>(&dev, 128, &counts)?),
    ];

    let step = |what: &str| rows.iter().find(|r| r.what == what);
    let ms = |what: &str| step(what).map_or(f64::NAN, |r| r.ms);
    let machine = kd_core::machine::Machine::get();
    println!(
        "\nmachine: {machine}, {threads} threads; weights multiplied in place up to {unpacked_columns} columns (fixed)\nmatmul peak 2048³ f32 (faster of dfdx's and kd's gemm): {peak:.1} GFLOP/s\n"
    );
    println!("| workload | step | ms | GFLOP/s | % of matmul peak | peak RSS MiB |");
    println!("|---|---|---:|---:|---:|---:|");
    for row in &rows {
        let gflops = row.gflops.unwrap_or(f64::NAN);
        println!(
            "| {} | {} | {:.2} | {:.1} | {:.0} % | {} |",
            row.workload,
            row.what,
            row.ms,
            gflops,
            100.0 * gflops / peak,
            row.peak_mib.map_or("n/a".into(), |m| format!("{m:.0}"))
        );
    }

    // (name, numerator, denominator, target): the measured ratio is numerator / denominator.
    let gflops = |what: &str| step(what).and_then(|r| r.gflops).unwrap_or(f64::NAN);
    let mut ratios = vec![
        (
            "#[distill] step / hand-written step, Hinton MLP",
            ms("KD step, #[distill]"),
            ms("KD step, hand-written dfdx"),
            Target::AtMost(1.05),
        ),
        (
            "#[distill] step / hand-written step, CNN hint+AT",
            ms("KD+hint+AT step, #[distill]"),
            ms("KD+hint+AT step, hand-written dfdx"),
            Target::AtMost(1.05),
        ),
        (
            "KD epoch with teacher cache / student-alone epoch",
            kd_epoch,
            alone_epoch,
            Target::AtMost(1.10),
        ),
        (
            "Hinton KD step GFLOP/s / matmul peak",
            gflops("KD step, #[distill]"),
            peak,
            Target::AtLeast(0.70),
        ),
    ];
    if let Some(torch) = &torch {
        let t = |key: &str| torch[key].as_f64().unwrap_or(f64::NAN);
        ratios.push((
            "KD step / PyTorch KD step, Hinton MLP",
            ms("KD step, #[distill]"),
            t("hinton_kd_step_ms"),
            Target::AtMost(0.8),
        ));
        ratios.push((
            "cached KD step / PyTorch KD step, Hinton MLP",
            ms("KD step, cached teacher logits"),
            t("hinton_kd_step_ms"),
            Target::AtMost(0.5),
        ));
        ratios.push((
            "cached KD step / PyTorch cached KD step (no target)",
            ms("KD step, cached teacher logits"),
            t("hinton_cached_kd_step_ms"),
            Target::None,
        ));
        ratios.push((
            "KD+hint+AT step / PyTorch, CNN",
            ms("KD+hint+AT step, #[distill]"),
            t("cnn_fitnet_at_step_ms"),
            Target::AtMost(1.0),
        ));
    }
    println!("\n| ratio | measured | target | |");
    println!("|---|---:|---:|---|");
    for (name, numerator, denominator, target) in &ratios {
        let ratio = numerator / denominator;
        let met = verdict(target.met(ratio));
        match target {
            Target::AtLeast(floor) => println!("| {name} | {:.0} % | ≥ {:.0} % | {met} |", 100.0 * ratio, 100.0 * floor),
            Target::AtMost(ceiling) => println!("| {name} | {ratio:.3}× | ≤ {ceiling:.2}× | {met} |"),
            Target::None => println!("| {name} | {ratio:.3}× | | |"),
        }
    }
    if let Some(torch) = &torch {
        println!(
            "\nPyTorch {} ({} threads): KD step {:.2} ms, cached KD step {:.2} ms, CNN step {:.2} ms",
            torch["torch"].as_str().unwrap_or("?"),
            torch["threads"],
            torch["hinton_kd_step_ms"].as_f64().unwrap_or(f64::NAN),
            torch["hinton_cached_kd_step_ms"].as_f64().unwrap_or(f64::NAN),
            torch["cnn_fitnet_at_step_ms"].as_f64().unwrap_or(f64::NAN),
        );
    }

    println!("\nKD step (#[distill], Hinton pair) by batch size:\n\n| batch | ms | µs per sample |\n|---:|---:|---:|");
    for (batch, ms) in &batches {
        println!("| {batch} | {ms:.2} | {:.1} |", 1e3 * ms / *batch as f64);
    }
    println!("\nKD step (batch 128, 1200-1200 teacher) by student width 784-W-W-10:\n\n| W | ms | student GFLOP/s |\n|---:|---:|---:|");
    for (width, ms) in &widths {
        let flops = 3.0 * linear_flops(128, &[(784, *width), (*width, *width), (*width, 10)]) + linear_flops(128, &TEACHER_LAYERS);
        println!("| {width} | {ms:.2} | {:.1} |", flops / (ms * 1e6));
    }

    let json = serde_json::json!({
        "machine": machine.model, "simd": machine.simd.name(), "l1d_bytes": machine.l1d_bytes,
        "l2_bytes": machine.l2_bytes, "l3_bytes": machine.l3_bytes,
        "unpacked_lhs_columns": unpacked_columns, "threads": threads, "quick": options.quick, "matmul_peak_gflops": peak,
        "steps": rows.iter().map(|r| serde_json::json!({"workload": r.workload, "step": r.what, "ms": r.ms,
            "gflops": r.gflops, "peak_rss_mib": r.peak_mib})).collect::<Vec<_>>(),
        "ratios": ratios.iter().map(|(name, numerator, denominator, target)| {
            let ratio = numerator / denominator;
            serde_json::json!({"ratio": name, "measured": ratio, "numerator": numerator, "denominator": denominator,
                "target": target.value(), "at_least": matches!(target, Target::AtLeast(_)), "met": target.met(ratio)})
        }).collect::<Vec<_>>(),
        "epoch_seconds": {"kd_cached": kd_epoch, "alone": alone_epoch},
        "batch_scaling": batches.iter().map(|(b, ms)| serde_json::json!({"batch": b, "ms": ms})).collect::<Vec<_>>(),
        "width_scaling": widths.iter().map(|(w, ms)| serde_json::json!({"width": w, "ms": ms})).collect::<Vec<_>>(),
        "pytorch": torch,
    });
    let path = options.out.join("bench.json");
    write_atomically(&path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    println!("\nwritten: {}", path.display());
    Ok(())
}
