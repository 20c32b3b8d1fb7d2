//! Convolution speed: kd-core's `conv2d` (forward, and forward + backward) at LeNet-sized and
//! small-ResNet-sized layers, against PyTorch on the CPU with the same thread count.
//!
//! ```sh
//! cargo bench -p kd-core --bench conv                 # PyTorch column when `python3 -c "import torch"` works
//! KD_BENCH_PYTHON=/path/to/venv/bin/python cargo bench -p kd-core --bench conv
//! ```
//!
//! Prints a table of medians (after warm-up) and the ratio kd / PyTorch (lower is better), and
//! writes `target/bench/conv.json`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use dfdx::prelude::*;
use kd_core::spatial::{conv2d, Conv2dGeometry};

struct Workload {
    name: &'static str,
    batch: usize,
    input: usize,
    output: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    repeats: usize,
}

const WORKLOADS: [Workload; 9] = [
    Workload {
        name: "lenet conv1 64x1x28x28 k5 p2 -> 6",
        batch: 64,
        input: 1,
        output: 6,
        size: 28,
        kernel: 5,
        stride: 1,
        padding: 2,
        repeats: 30,
    },
    Workload {
        name: "lenet conv2 64x6x14x14 k5 -> 16",
        batch: 64,
        input: 6,
        output: 16,
        size: 14,
        kernel: 5,
        stride: 1,
        padding: 0,
        repeats: 30,
    },
    Workload {
        name: "resnet stage1 32x16x32x32 k3 p1 -> 16",
        batch: 32,
        input: 16,
        output: 16,
        size: 32,
        kernel: 3,
        stride: 1,
        padding: 1,
        repeats: 20,
    },
    Workload {
        name: "resnet down 32x16x32x32 k3 s2 p1 -> 32",
        batch: 32,
        input: 16,
        output: 32,
        size: 32,
        kernel: 3,
        stride: 2,
        padding: 1,
        repeats: 20,
    },
    Workload {
        name: "resnet stage3 32x64x8x8 k3 p1 -> 64",
        batch: 32,
        input: 64,
        output: 64,
        size: 8,
        kernel: 3,
        stride: 1,
        padding: 1,
        repeats: 20,
    },
    kd_bench_cnn("kd bench cnn conv1 64x1x28x28 k3 p1 -> 16", 1, 16, 28),
    kd_bench_cnn("kd bench cnn teacher 64x16x28x28 k3 p1 -> 16", 16, 16, 28),
    kd_bench_cnn("kd bench cnn conv2 64x16x14x14 k3 p1 -> 32", 16, 32, 14),
    kd_bench_cnn("kd bench cnn teacher 64x32x14x14 k3 p1 -> 32", 32, 32, 14),
];

/// A 3×3, padding-1 convolution of `kd bench`'s CNN pair (batch 64).
const fn kd_bench_cnn(name: &'static str, input: usize, output: usize, size: usize) -> Workload {
    Workload {
        name,
        batch: 64,
        input,
        output,
        size,
        kernel: 3,
        stride: 1,
        padding: 1,
        repeats: 20,
    }
}

fn median_ms(repeats: usize, mut run: impl FnMut()) -> f64 {
    for _ in 0..3 {
        run();
    }
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn kd_timings(dev: &Cpu, w: &Workload) -> (f64, f64) {
    let x: Tensor<(usize, usize, usize, usize), f32, _> = dev.sample_normal_like(&(w.batch, w.input, w.size, w.size));
    let weight: Tensor<(usize, usize, usize, usize), f32, _> = dev.sample_normal_like(&(w.output, w.input, w.kernel, w.kernel));
    let bias: Tensor<(usize,), f32, _> = dev.zeros_like(&(w.output,));
    let geometry = Conv2dGeometry::square(w.kernel).with_stride(w.stride).with_padding(w.padding);
    let probe = conv2d(x.clone(), weight.clone(), Some(bias.clone()), geometry).expect("benchmark shapes fit");
    let forward = median_ms(w.repeats, || {
        let _ = conv2d(x.clone(), weight.clone(), Some(bias.clone()), geometry).expect("fits");
    });
    let train = median_ms(w.repeats, || {
        let out = conv2d(
            x.leaky_trace(),
            weight.retaped::<OwnedTape<f32, Cpu>>(),
            Some(bias.retaped()),
            geometry,
        )
        .expect("fits");
        let _ = (out * probe.clone()).sum().backward();
    });
    (forward, train)
}

fn torch_timings(threads: usize) -> Option<serde_json::Value> {
    let python = std::env::var("KD_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/conv_torch.py");
    let workloads: Vec<serde_json::Value> = WORKLOADS
        .iter()
        .map(|w| {
            serde_json::json!({"name": w.name, "batch": w.batch, "in": w.input, "out": w.output, "size": w.size,
                               "kernel": w.kernel, "stride": w.stride, "padding": w.padding, "repeats": w.repeats})
        })
        .collect();
    let mut child = Command::new(&python)
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

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dev = Cpu::seed_from_u64(0);
    let torch = torch_timings(threads);
    let torch_ms = |name: &str, key: &str| torch.as_ref().and_then(|t| t["timings"][name][key].as_f64());
    let ratio = |kd: f64, torch: Option<f64>| torch.map_or("-".to_string(), |t| format!("{:.2}x", kd / t));
    let cell = |ms: Option<f64>| ms.map_or("-".to_string(), |t| format!("{t:.2}"));

    let machine = kd_core::machine::Machine::get();
    println!("{machine}");
    println!("conv2d, f32, {threads} threads; medians in ms; ratio = kd / PyTorch (lower is better)");
    if let Some(t) = &torch {
        println!("PyTorch {} with {} threads", t["torch"].as_str().unwrap_or("?"), t["threads"]);
    }
    println!("| workload | kd fwd | torch fwd | ratio | kd fwd+bwd | torch fwd+bwd | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for w in &WORKLOADS {
        let (forward, train) = kd_timings(&dev, w);
        let (torch_forward, torch_train) = (torch_ms(w.name, "forward_ms"), torch_ms(w.name, "train_ms"));
        println!(
            "| {} | {forward:.2} | {} | {} | {train:.2} | {} | {} |",
            w.name,
            cell(torch_forward),
            ratio(forward, torch_forward),
            cell(torch_train),
            ratio(train, torch_train)
        );
        rows.push(
            serde_json::json!({"workload": w.name, "kd_forward_ms": forward, "torch_forward_ms": torch_forward,
                                     "kd_train_ms": train, "torch_train_ms": torch_train}),
        );
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let json = serde_json::json!({"machine": machine.model, "simd": machine.simd.name(), "threads": threads, "torch": torch.as_ref().map(|t| t["torch"].clone()), "rows": rows});
        std::fs::write(dir.join("conv.json"), json.to_string())
    });
    match written {
        Ok(()) => println!("wrote {}", dir.join("conv.json").display()),
        Err(e) => eprintln!("could not write {}: {e}", dir.display()),
    }
}
