//! `kd bench --quick` runs every measurement once over (a smoke run: no speed target is
//! asserted). What is checked is that the figures are consistent: every ratio is its two
//! measured times divided, each step's GFLOP/s lies below what the machine can do, and a
//! larger batch takes longer. A bench that timed nothing, mixed up its operands or
//! miscounted its work fails here.

use crate::common::kd_succeeds;

#[test]
fn quick_bench_figures_are_consistent() {
    let out = tempfile::tempdir().expect("tempdir");
    let (stdout, stderr) = kd_succeeds(&["bench", "--quick", "--python", "/nonexistent/python"], out.path());
    assert!(stderr.contains("PyTorch comparison skipped"), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench.json")).expect("bench.json")).expect("valid JSON");
    let number = |v: &serde_json::Value, key: &str| v[key].as_f64().unwrap_or_else(|| panic!("`{key}` in {v}"));

    let steps = json["steps"].as_array().expect("steps");
    let ms = |step: &str| {
        steps
            .iter()
            .find(|s| s["step"] == step)
            .map(|s| number(s, "ms"))
            .unwrap_or_else(|| panic!("no step `{step}` in {steps:?}"))
    };
    let ratios = json["ratios"].as_array().expect("ratios");
    assert_eq!(
        ratios.len(),
        4,
        "without torch: the two macro ratios, the cache ratio and the share of the matmul peak"
    );
    let kd_step_gflops = steps
        .iter()
        .find(|s| s["step"] == "KD step, #[distill]")
        .map(|s| number(s, "gflops"))
        .expect("the KD step's GFLOP/s");
    let expected = [
        (ms("KD step, #[distill]"), ms("KD step, hand-written dfdx")),
        (ms("KD+hint+AT step, #[distill]"), ms("KD+hint+AT step, hand-written dfdx")),
        (number(&json["epoch_seconds"], "kd_cached"), number(&json["epoch_seconds"], "alone")),
        (kd_step_gflops, number(&json, "matmul_peak_gflops")),
    ];
    assert_eq!(ratios[3]["at_least"], true, "the share of the peak is a floor");
    for (ratio, (numerator, denominator)) in ratios.iter().take(3).zip(expected) {
        assert_eq!(
            (number(ratio, "numerator"), number(ratio, "denominator")),
            (numerator, denominator),
            "{ratio}"
        );
        let measured = number(ratio, "measured");
        assert!((measured - numerator / denominator).abs() < 1e-12 && measured > 0.0, "{ratio}");
        assert!(
            stdout.contains(&format!("{measured:.3}×")),
            "the table shows {measured:.3}×:\n{stdout}"
        );
    }

    let share = number(&ratios[3], "measured");
    assert_eq!((number(&ratios[3], "numerator"), number(&ratios[3], "denominator")), expected[3]);
    assert!(
        stdout.contains(&format!("| {:.0} % | ≥ 70 % |", 100.0 * share)),
        "the table shows the share in percent:\n{stdout}"
    );
    // The machine is named with its SIMD level, and gemm's in-place width is recorded.
    let simd = json["simd"].as_str().expect("simd");
    assert!(
        stdout.contains(json["machine"].as_str().expect("machine")) && stdout.contains(simd),
        "{stdout}"
    );
    assert_eq!(json["unpacked_lhs_columns"], 258, "{json}");

    // No step can run faster than twice the machine's measured matmul peak.
    let peak = number(&json, "matmul_peak_gflops");
    for step in steps {
        let ms = number(step, "ms");
        assert!(ms > 0.0 && ms.is_finite(), "{step}");
        if let Some(gflops) = step["gflops"].as_f64() {
            assert!(gflops > 0.0 && gflops < 2.0 * peak, "{step} against a peak of {peak} GFLOP/s");
        }
    }
    let batches = json["batch_scaling"].as_array().expect("batch scaling");
    let (smallest, largest) = (number(&batches[0], "ms"), number(&batches[batches.len() - 1], "ms"));
    assert!(
        largest > smallest,
        "batch 512 ({largest} ms) takes longer than batch 32 ({smallest} ms)"
    );
}

/// `kd bench --out` on a file fails at once, naming the path, before measuring anything.
#[test]
fn an_unwritable_out_fails_before_measuring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.json");
    std::fs::write(&file, "{}").expect("a file");
    let started = std::time::Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["bench", "--quick", "--python", "/nonexistent/python", "--out"])
        .arg(&file)
        .output()
        .expect("kd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("bench.json: cannot create the output folder"),
        "{stderr}"
    );
    assert!(!stderr.contains("measuring"), "it measured first: {stderr}");
    assert!(started.elapsed().as_secs() < 5);
}

/// An --out that cannot hold bench.json is refused before any measuring, with the path named.
#[test]
fn an_unusable_out_is_refused_before_measuring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.json");
    std::fs::write(&file, "{}").expect("a file where the folder should go");
    let started = std::time::Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["bench", "--python", "/nonexistent/python", "--out"])
        .arg(&file)
        .output()
        .expect("kd runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("bench.json: cannot create the output folder"),
        "{stderr}"
    );
    assert!(started.elapsed().as_secs() < 30, "refused at once, not after the benchmark");
}
