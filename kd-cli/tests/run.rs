//! `kd run` end to end on a small real subset: two methods on Fashion-MNIST (Debian's
//! package) and MNIST, one epoch each. Every model must beat chance by far, the table must list
//! each method's loss terms, and methods.json and the chart must exist and parse.

use std::process::Command;

mod common;
use common::kd_succeeds;

fn run(dataset: &str, methods: &str) -> (tempfile::TempDir, String) {
    let out = tempfile::tempdir().expect("tempdir");
    let args = [
        "run",
        "--method",
        methods,
        "--dataset",
        dataset,
        "--train-images",
        "1500",
        "--teacher-epochs",
        "1",
        "--epochs",
        "1",
    ];
    let (stdout, _) = kd_succeeds(&args, out.path());
    (out, stdout)
}

#[test]
fn methods_are_compared_in_a_table_and_a_results_file() {
    let (out, stdout) = run("mnist", "at,rkd");
    for row in [
        "| student alone (CE) | ce |",
        "| student + at | ce, attention.conv1, attention.conv2 |",
        "| student + rkd | ce, rkd_distance.fc, rkd_angle.fc |",
    ] {
        assert!(stdout.contains(row), "missing `{row}` in:\n{stdout}");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("methods.json")).expect("methods.json")).expect("valid JSON");
    let models = results["models"].as_array().expect("models");
    assert_eq!(models.len(), 4, "teacher, student alone, two methods");
    for model in models {
        let accuracy = model["accuracy"].as_f64().expect("accuracy");
        assert!(
            accuracy > 0.3,
            "{}: accuracy {accuracy} should be far above chance (0.1)",
            model["model"]
        );
    }
    let svg = std::fs::read_to_string(out.path().join("methods_test_errors.svg")).expect("chart");
    assert!(svg.contains("student + rkd"), "the chart has a legend entry per model");
}

#[test]
fn fashion_mnist_runs_from_the_debian_package() {
    let (out, stdout) = run("fashion-mnist", "kd");
    assert!(stdout.contains("Fashion-MNIST test errors"), "{stdout}");
    assert!(stdout.contains("| student + kd | ce, kd |"), "{stdout}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("methods.json")).expect("methods.json")).expect("valid JSON");
    assert_eq!(results["dataset"], "Fashion-MNIST");
}

#[test]
fn an_unknown_method_is_refused_with_the_list() {
    let output = Command::new(env!("CARGO_BIN_EXE_kd"))
        .args(["run", "--method", "kdd"])
        .output()
        .expect("kd runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("fitnet") && stderr.contains("all"), "{stderr}");
}

#[test]
fn regimes_report_generations_peers_and_heads() {
    let out = tempfile::tempdir().expect("tempdir");
    let args = [
        "run",
        "--regime",
        "born-again,dml,byot,gan,netaug",
        "--train-images",
        "1000",
        "--epochs",
        "1",
    ];
    let (stdout, _) = kd_succeeds(&args, out.path());
    for row in [
        "| generation 2 (taught by the previous) |",
        "| ensemble of generations 0..2 |",
        "| student CNN, mutual |",
        "| BYOT: head 1 (after stage 1) |",
        "| deep supervision: deepest head |",
    ] {
        assert!(stdout.contains(row), "missing `{row}` in:\n{stdout}");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("regimes.json")).expect("regimes.json")).expect("valid JSON");
    for (regime, rows) in [("born-again", 5), ("dml", 4), ("byot", 6), ("netaug", 2)] {
        assert_eq!(results[regime].as_array().map(Vec::len), Some(rows), "{regime}: {results}");
    }
    let generators = results["gan"]["models"].as_array().expect("gan models");
    assert_eq!(generators.len(), 3);
    assert!(
        generators.iter().all(|g| g["psnr"].as_f64().is_some_and(f64::is_finite)),
        "{results}"
    );
    assert!(stdout.contains("| student generator distilled | 4385 (15.2× fewer) |"), "{stdout}");
}
