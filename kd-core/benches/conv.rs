//! Convolution and pooling speed: kd-core's `conv2d`, `conv_transpose2d`, `max_pool2d` and
//! `avg_pool2d` (forward, and forward + backward) at the layers of LeNet, a small ResNet, the
//! CNN pair of `kd bench` and the GAN experiment, against PyTorch on the CPU with the same
//! thread count.
//!
//! ```sh
//! cargo bench -p kd-core --bench conv                 # PyTorch column when `python3 -c "import torch"` works
//! KD_BENCH_PYTHON="$(scripts/bench-setup)" cargo bench -p kd-core --bench conv   # PyTorch installed into the cache
//! KD_BENCH_THREADS=1 KD_BENCH_ONLY='resnet|lenet' cargo bench -p kd-core --bench conv
//! ```
//!
//! Measures at 1 thread and at every core (or the `KD_BENCH_THREADS` list), PyTorch with the same
//! count, in three interleaved rounds (PyTorch, then kd). Prints a table per thread count of the
//! fastest of 3 × 40 runs (after warm-up) with the ratio kd / PyTorch
//! (lower is better), and writes `target/bench/conv.json`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use dfdx::prelude::*;
use kd_core::spatial::{avg_pool2d, conv2d, conv_transpose2d, max_pool2d, Conv2dGeometry};

/// What a workload times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Conv,
    /// `weight (in, out, k, k)`, as PyTorch's `conv_transpose2d` takes it.
    Transposed,
    /// Pooling has no weight: `input` channels in and out.
    MaxPool,
    AvgPool,
}

impl Kind {
    /// The name `conv_torch.py` dispatches on.
    const fn name(self) -> &'static str {
        match self {
            Kind::Conv => "conv",
            Kind::Transposed => "transposed",
            Kind::MaxPool => "max_pool",
            Kind::AvgPool => "avg_pool",
        }
    }
}

struct Workload {
    name: &'static str,
    kind: Kind,
    batch: usize,
    input: usize,
    output: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

/// Timed runs per figure and round (after warm-up).
const REPEATS: usize = 40;

/// Rounds per thread count, each timing PyTorch and then kd; every figure keeps its fastest
/// round, so a burst of other work on a shared machine does not land on one side only.
const ROUNDS: usize = 3;

/// Issue 23's target for every workload and thread count: kd / PyTorch ≤ 1.2.
const TARGET: f64 = 1.2;

/// The smaller of two optional times.
fn faster(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[allow(clippy::too_many_arguments)] // one per column of the table, named at each call
const fn conv(
    name: &'static str,
    batch: usize,
    input: usize,
    output: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Workload {
    Workload {
        name,
        kind: Kind::Conv,
        batch,
        input,
        output,
        size,
        kernel,
        stride,
        padding,
    }
}

/// A 3×3, padding-1 convolution of `kd bench`'s CNN pair (batch 64).
const fn kd_bench_cnn(name: &'static str, input: usize, output: usize, size: usize) -> Workload {
    conv(name, 64, input, output, size, 3, 1, 1)
}

/// A 4×4, stride-2, padding-1 transposed convolution of the GAN experiment's teacher generator
/// (batch 64), which doubles the map.
const fn gan_decoder(name: &'static str, input: usize, output: usize, size: usize) -> Workload {
    Workload {
        kind: Kind::Transposed,
        ..conv(name, 64, input, output, size, 4, 2, 1)
    }
}

/// A pooling window over `channels` maps of `size × size` (batch 64).
const fn pool(name: &'static str, kind: Kind, channels: usize, size: usize, kernel: usize, stride: usize, padding: usize) -> Workload {
    Workload {
        kind,
        ..conv(name, 64, channels, channels, size, kernel, stride, padding)
    }
}

const WORKLOADS: [Workload; 17] = [
    conv("lenet conv1 64x1x28x28 k5 p2 -> 6", 64, 1, 6, 28, 5, 1, 2),
    conv("lenet conv2 64x6x14x14 k5 -> 16", 64, 6, 16, 14, 5, 1, 0),
    conv("resnet stage1 32x16x32x32 k3 p1 -> 16", 32, 16, 16, 32, 3, 1, 1),
    conv("resnet down 32x16x32x32 k3 s2 p1 -> 32", 32, 16, 32, 32, 3, 2, 1),
    conv("resnet stage3 32x64x8x8 k3 p1 -> 64", 32, 64, 64, 8, 3, 1, 1),
    kd_bench_cnn("kd bench cnn conv1 64x1x28x28 k3 p1 -> 16", 1, 16, 28),
    kd_bench_cnn("kd bench cnn teacher 64x16x28x28 k3 p1 -> 16", 16, 16, 28),
    kd_bench_cnn("kd bench cnn conv2 64x16x14x14 k3 p1 -> 32", 16, 32, 14),
    kd_bench_cnn("kd bench cnn teacher 64x32x14x14 k3 p1 -> 32", 32, 32, 14),
    conv("hint adapter 1x1 64x16x14x14 -> 32", 64, 16, 32, 14, 1, 1, 0),
    conv("gan adapter 1x1 64x16x7x7 -> 64", 64, 16, 64, 7, 1, 1, 0),
    gan_decoder("gan dec1 transposed 64x64x7x7 k4 s2 p1 -> 32", 64, 32, 7),
    gan_decoder("gan dec2 transposed 64x32x14x14 k4 s2 p1 -> 1", 32, 1, 14),
    pool("lenet max pool 2x2 64x6x28x28", Kind::MaxPool, 6, 28, 2, 2, 0),
    pool("kd bench cnn max pool 2x2 64x16x28x28", Kind::MaxPool, 16, 28, 2, 2, 0),
    pool("resnet stem max pool k3 s2 p1 64x16x32x32", Kind::MaxPool, 16, 32, 3, 2, 1),
    pool("avg pool 2x2 64x16x28x28", Kind::AvgPool, 16, 28, 2, 2, 0),
];

/// The fastest of [`REPEATS`] timed runs after three warm-up runs, in ms: on a shared machine
/// other work only ever adds time, and the fastest run is the one it disturbed least.
/// `conv_torch.py` times PyTorch the same way.
fn fastest_ms(mut run: impl FnMut()) -> f64 {
    for _ in 0..3 {
        run();
    }
    (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

type Map = (usize, usize, usize, usize);

/// The workload's convolution or pooling, on any tape.
fn apply<T: Tape<f32, Cpu>>(
    kind: Kind,
    geometry: Conv2dGeometry,
    x: Tensor<Map, f32, Cpu, T>,
    weight: Tensor<Map, f32, Cpu, T>,
    bias: Tensor<(usize,), f32, Cpu, T>,
) -> kd_core::spatial::SpatialResult<Map, f32, T> {
    match kind {
        Kind::Conv => conv2d(x, weight, Some(bias), geometry),
        Kind::Transposed => conv_transpose2d(x, weight, Some(bias), geometry, (0, 0)),
        Kind::MaxPool => max_pool2d(x, geometry),
        Kind::AvgPool => avg_pool2d(x, geometry),
    }
}

fn kd_timings(dev: &Cpu, w: &Workload) -> (f64, f64) {
    let x: Tensor<Map, f32, _> = dev.sample_normal_like(&(w.batch, w.input, w.size, w.size));
    let weight_shape = match w.kind {
        Kind::Conv => (w.output, w.input, w.kernel, w.kernel),
        Kind::Transposed => (w.input, w.output, w.kernel, w.kernel),
        Kind::MaxPool | Kind::AvgPool => (1, 1, 1, 1),
    };
    let weight: Tensor<Map, f32, _> = dev.sample_normal_like(&weight_shape);
    let bias: Tensor<(usize,), f32, _> = dev.zeros_like(&(w.output,));
    let geometry = Conv2dGeometry::square(w.kernel).with_stride(w.stride).with_padding(w.padding);
    let probe = apply(w.kind, geometry, x.clone(), weight.clone(), bias.clone()).expect("benchmark shapes fit");
    let forward = fastest_ms(|| {
        let _ = apply(w.kind, geometry, x.clone(), weight.clone(), bias.clone()).expect("fits");
    });
    // The backward starts from `probe` as the output's gradient (PyTorch: `out.backward(probe)`),
    // so both sides time the convolution's own kernels, not a loss built on top of it.
    let probe = probe.as_vec();
    let train = fastest_ms(|| {
        let out = apply(
            w.kind,
            geometry,
            x.leaky_trace(),
            weight.retaped::<OwnedTape<f32, Cpu>>(),
            bias.retaped(),
        )
        .expect("fits");
        let (out, mut tape) = out.split_tape();
        let upstream = probe.clone();
        tape.add_backward_op(move |grads| {
            grads.get_or_alloc_mut(&out)?.copy_from_slice(&upstream);
            Ok(())
        });
        let _ = dev.zeros::<Rank0>().put_tape(tape).backward();
    });
    (forward, train)
}

fn torch_timings(python: &str, threads: usize, workloads: &[&Workload]) -> Option<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/conv_torch.py");
    let workloads: Vec<serde_json::Value> = workloads
        .iter()
        .map(|w| {
            serde_json::json!({"name": w.name, "kind": w.kind.name(), "batch": w.batch, "in": w.input,
                               "out": w.output, "size": w.size, "kernel": w.kernel, "stride": w.stride,
                               "padding": w.padding, "repeats": REPEATS})
        })
        .collect();
    let mut child = Command::new(python)
        .arg(script)
        .arg(threads.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()?
        .write_all(serde_json::Value::Array(workloads).to_string().as_bytes())
        .ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        eprintln!(
            "PyTorch column skipped: {} {script} failed: {}",
            python,
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
        );
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// The thread counts to measure: `KD_BENCH_THREADS` (comma-separated), else 1 and every core.
fn thread_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("KD_BENCH_THREADS") {
        Ok(list) => list.split(',').filter_map(|t| t.trim().parse().ok()).filter(|&t| t > 0).collect(),
        Err(_) if cores > 1 => vec![1, cores],
        Err(_) => vec![1],
    }
}

fn main() {
    let python = std::env::var("KD_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let only = std::env::var("KD_BENCH_ONLY").unwrap_or_default();
    let workloads: Vec<&Workload> = WORKLOADS
        .iter()
        .filter(|w| only.split('|').any(|part| w.name.contains(part)))
        .collect();
    let ratio = |kd: f64, torch: Option<f64>| torch.map(|t| kd / t);
    let ratio_cell = |kd: f64, torch: Option<f64>| ratio(kd, torch).map_or("-".to_string(), |r| format!("{r:.2}x"));
    let cell = |ms: Option<f64>| ms.map_or("-".to_string(), |t| format!("{t:.2}"));

    let machine = kd_core::machine::Machine::get();
    println!("{machine}");
    let mut rows = Vec::new();
    let mut torch_version = None;
    for threads in thread_counts() {
        let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool,
            Err(e) => {
                eprintln!("could not start {threads} threads: {e}");
                continue;
            }
        };
        let dev = Cpu::seed_from_u64(0);
        // Per workload: (forward, forward + backward), the fastest over the rounds.
        let mut kd = vec![(f64::INFINITY, f64::INFINITY); workloads.len()];
        let mut torch: Vec<(Option<f64>, Option<f64>)> = vec![(None, None); workloads.len()];
        for round in 1..=ROUNDS {
            eprint!("\r{threads} threads: round {round} of {ROUNDS}");
            if let Some(t) = torch_timings(&python, threads, &workloads) {
                for (w, (forward, train)) in workloads.iter().zip(&mut torch) {
                    let timing = &t["timings"][w.name];
                    *forward = faster(*forward, timing["forward_ms"].as_f64());
                    *train = faster(*train, timing["train_ms"].as_f64());
                }
                torch_version = Some(t["torch"].clone());
            }
            for (w, (forward, train)) in workloads.iter().zip(&mut kd) {
                let (f, t) = pool.install(|| kd_timings(&dev, w));
                (*forward, *train) = (forward.min(f), train.min(t));
            }
        }
        eprintln!();
        println!("\nconvolution and pooling, f32, {threads} threads; fastest of {ROUNDS} rounds of {REPEATS} runs, in ms; ratio = kd / PyTorch (target ≤ {TARGET})");
        if let Some(version) = &torch_version {
            println!("PyTorch {} with {threads} threads", version.as_str().unwrap_or("?"));
        }
        println!("| workload | kd fwd | torch fwd | ratio | kd fwd+bwd | torch fwd+bwd | ratio |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (w, (&(forward, train), &(torch_forward, torch_train))) in workloads.iter().zip(kd.iter().zip(&torch)) {
            println!(
                "| {} | {forward:.2} | {} | {} | {train:.2} | {} | {} |",
                w.name,
                cell(torch_forward),
                ratio_cell(forward, torch_forward),
                cell(torch_train),
                ratio_cell(train, torch_train)
            );
            let met = |kd: f64, torch: Option<f64>| ratio(kd, torch).map(|r| r <= TARGET);
            rows.push(serde_json::json!({"workload": w.name, "threads": threads,
                "kd_forward_ms": forward, "torch_forward_ms": torch_forward, "forward_met": met(forward, torch_forward),
                "kd_train_ms": train, "torch_train_ms": torch_train, "train_met": met(train, torch_train)}));
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let json = serde_json::json!({"machine": machine.model, "simd": machine.simd.name(), "l2_bytes": machine.l2_bytes,
            "torch": torch_version, "target": TARGET, "rounds": ROUNDS, "repeats": REPEATS, "rows": rows});
        std::fs::write(dir.join("conv.json"), json.to_string())
    });
    match written {
        Ok(()) => println!("wrote {}", dir.join("conv.json").display()),
        Err(e) => eprintln!("could not write {}: {e}", dir.display()),
    }
}
