//! `kd bench --quick` runs every measurement once over (a smoke run: no timing is asserted, only
//! that each figure is measured and reported).

use std::process::Command;

#[test]
fn quick_bench_reports_every_ratio_and_table() {
    let out = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["bench", "--quick", "--python", "/nonexistent/python", "--out"])
        .arg(out.path())
        .output()
        .expect("kd runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kd bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "matmul peak",
        "| hinton mlp | KD step, #[distill] |",
        "| cnn fitnet+at |",
        "| 512 |",
        "| 1600 |",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert!(String::from_utf8_lossy(&output.stderr).contains("PyTorch comparison skipped"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench.json")).expect("bench.json")).expect("valid JSON");
    let ratios = json["ratios"].as_array().expect("ratios");
    assert_eq!(ratios.len(), 3, "without torch: the macro ratios and the cache ratio");
    for ratio in ratios {
        let measured = ratio["measured"].as_f64().expect("a measured ratio");
        assert!(measured.is_finite() && measured > 0.0, "{ratio}");
    }
    assert!(json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .all(|s| s["ms"].as_f64().is_some_and(|ms| ms > 0.0)));
}
