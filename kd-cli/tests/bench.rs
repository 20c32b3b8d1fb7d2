//! `kd bench --quick` runs every measurement once over (a smoke run: no timing is asserted, only
//! that each figure is measured and reported).

mod common;
use common::kd_succeeds;

#[test]
fn quick_bench_reports_every_ratio_and_table() {
    let out = tempfile::tempdir().expect("tempdir");
    let (stdout, stderr) = kd_succeeds(&["bench", "--quick", "--python", "/nonexistent/python"], out.path());
    for line in [
        "matmul peak",
        "| hinton mlp | KD step, #[distill] |",
        "| cnn fitnet+at |",
        "| 512 |",
        "| 1600 |",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert!(stderr.contains("PyTorch comparison skipped"));
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
