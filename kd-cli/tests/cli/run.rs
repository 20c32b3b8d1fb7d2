//! `kd run` end to end on a small real subset: two methods on Fashion-MNIST (Debian's
//! package) and MNIST, one epoch each, and every regime. The checks read the results files:
//! every model beats chance by far, each method trained on exactly its loss terms, the printed
//! table shows the file's numbers, and the charts exist.

use std::process::Command;

use crate::common::kd_succeeds;

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
        // Scoring all 10,000 test images after each epoch cost more than the training.
        "--test-images",
        "2000",
        "--teacher-epochs",
        "1",
        "--epochs",
        "1",
    ];
    let (stdout, _) = kd_succeeds(&args, out.path());
    (out, stdout)
}

fn results(out: &std::path::Path, file: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))).expect("valid JSON")
}

#[test]
fn methods_are_compared_in_a_table_and_a_results_file() {
    let (out, stdout) = run("mnist", "at,rkd");
    let results = results(out.path(), "methods.json");
    let models = results["models"].as_array().expect("models");
    let trained: Vec<(&str, Vec<&str>)> = models
        .iter()
        .map(|m| {
            let terms = m["terms"].as_array().expect("terms").iter().filter_map(|t| t.as_str()).collect();
            (m["model"].as_str().expect("model"), terms)
        })
        .collect();
    assert_eq!(
        trained,
        [
            ("teacher (CE)", vec!["ce"]),
            ("student alone (CE)", vec!["ce"]),
            ("student + at", vec!["ce", "attention.conv1", "attention.conv2"]),
            ("student + rkd", vec!["ce", "rkd_distance.fc", "rkd_angle.fc"]),
        ]
    );
    for model in models {
        let accuracy = model["accuracy"].as_f64().expect("accuracy");
        assert!(
            accuracy > 0.3,
            "{}: accuracy {accuracy} should be far above chance (0.1)",
            model["model"]
        );
        let errors = model["test_errors"].as_u64().expect("test errors");
        assert_eq!(
            model["test_errors_per_epoch"].as_array().map(Vec::len),
            Some(1),
            "one epoch: {model}"
        );
        assert!(
            stdout.contains(&format!(
                "| {} | {errors} |",
                model["terms"]
                    .as_array()
                    .expect("terms")
                    .iter()
                    .filter_map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "the table shows {}'s {errors} errors:\n{stdout}",
            model["model"]
        );
    }
    let svg = std::fs::read_to_string(out.path().join("methods_test_errors.svg")).expect("chart");
    assert!(svg.contains("student + rkd"), "the chart has a legend entry per model");
}

#[test]
fn fashion_mnist_runs_from_the_debian_package() {
    let (out, _) = run("fashion-mnist", "kd");
    let results = results(out.path(), "methods.json");
    assert_eq!(results["dataset"], "Fashion-MNIST");
    assert_eq!(results["train_images"], 1500);
    assert_eq!(results["test_images"], 2000);
    let distilled = &results["models"][2];
    assert_eq!(distilled["terms"], serde_json::json!(["ce", "kd"]));
    assert!(distilled["accuracy"].as_f64().expect("accuracy") > 0.3, "{distilled}");
}

#[test]
fn fsp_learns_its_feature_term_alone_first_then_the_labels_alone() {
    let (out, _) = run("mnist", "fsp");
    let results = results(out.path(), "methods.json");
    let fsp = &results["models"][2];
    assert_eq!(fsp["model"], "student + fsp");
    assert_eq!(fsp["terms"], serde_json::json!(["fsp.conv1.conv2", "ce"]), "{fsp}");
    assert!(fsp["accuracy"].as_f64().expect("accuracy") > 0.3, "{fsp}");
    let metrics = std::fs::read_to_string(out.path().join("student_fsp.metrics.jsonl")).expect("metrics");
    let epochs: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str(l).expect("a record")).collect();
    assert_eq!(epochs.len(), 2, "one initialisation epoch, then one on the labels: {metrics}");
    let trained_on = |epoch: &serde_json::Value, term: &str| epoch.get(term).is_some();
    assert!(
        trained_on(&epochs[0], "fsp.conv1.conv2") && !trained_on(&epochs[0], "ce"),
        "stage 1 is FSP alone: {}",
        epochs[0]
    );
    assert!(
        trained_on(&epochs[1], "ce") && !trained_on(&epochs[1], "fsp.conv1.conv2"),
        "stage 2 is CE alone: {}",
        epochs[1]
    );
    assert_eq!(
        epochs[1]["lr"], 1e-3,
        "the task's own schedule starts after the initialisation: {}",
        epochs[1]
    );
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
fn a_bad_kd_schedule_is_refused_by_setting() {
    let refused = |schedule: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_kd"))
            .args(["run", "--method", "kd", "--kd-schedule", schedule])
            .output()
            .expect("kd runs");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    let constant = |value: f64| format!(r#"{{"kind": "constant", "value": {value}}}"#);
    let cooling = format!(
        r#"{{"temperature": {{"kind": "linear", "from": 8, "to": 0}}, "ce_weight": {}, "kd_weight": {}}}"#,
        constant(0.1),
        constant(0.9)
    );
    let stderr = refused(&cooling);
    assert!(stderr.contains("`temperature` must be finite and > 0, got 0"), "{stderr}");
    let stderr = refused(r#"{"temperature": {"kind": "exponential"}}"#);
    assert!(stderr.contains("not a KD schedule") && stderr.contains("exponential"), "{stderr}");
}

#[test]
fn regimes_report_generations_peers_and_heads() {
    let out = tempfile::tempdir().expect("tempdir");
    let args = [
        "run",
        "--regime",
        "born-again,dml,byot,gan,netaug",
        "--train-images",
        // 16 steps: after 8, BYOT's deepest heads (three stages and a global pool) still sit
        // at chance.
        "2000",
        "--test-images",
        "2000",
        "--epochs",
        "1",
    ];
    kd_succeeds(&args, out.path());
    let results = results(out.path(), "regimes.json");
    let models = |regime: &str| -> Vec<String> {
        results[regime]
            .as_array()
            .unwrap_or_else(|| panic!("{regime}: {results}"))
            .iter()
            .map(|r| r["model"].as_str().expect("model").to_string())
            .collect()
    };
    assert_eq!(
        models("born-again"),
        [
            "generation 0 (labels)",
            "generation 1 (taught by the previous)",
            "generation 2 (taught by the previous)",
            "ensemble of generations 0..1",
            "ensemble of generations 0..2"
        ]
    );
    assert_eq!(models("dml"), ["peer 1 alone", "peer 2 alone", "peer 1, mutual", "peer 2, mutual"]);
    assert_eq!(
        models("byot"),
        [
            "deep supervision: head 1 (after stage 1)",
            "deep supervision: head 2 (after stage 2)",
            "deep supervision: deepest head",
            "BYOT: head 1 (after stage 1)",
            "BYOT: head 2 (after stage 2)",
            "BYOT: deepest head",
            "plain network: deepest head"
        ]
    );
    let first_record = |file: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(out.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_str(text.lines().next().expect("a record")).expect("JSON")
    };
    let generation = first_record("ban_gen1.metrics.jsonl");
    assert!(
        generation["kd"].as_f64().is_some_and(f64::is_finite) && generation.get("ce").is_none(),
        "a born-again generation learns from its teacher's distribution alone, not the labels: {generation}"
    );
    let mutual = first_record("dml_mutual.metrics.jsonl");
    for term in ["peer1.ce", "peer1.kl", "peer2.ce", "peer2.kl"] {
        assert!(
            mutual[term].as_f64().is_some_and(f64::is_finite),
            "each mutual peer learns from the labels and from the other: no `{term}` in {mutual}"
        );
    }
    assert_eq!(models("netaug").len(), 2);
    for regime in ["born-again", "dml", "byot", "netaug"] {
        // BYOT's shallow heads are left out: after one epoch on 2,000 images they may still sit
        // at chance.
        let rows = results[regime]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| !r["model"].as_str().is_some_and(|m| m.contains("head 1") || m.contains("head 2")));
        for row in rows {
            let errors = row["test_errors"].as_u64().expect("test errors");
            assert!(errors < 1800, "{regime}: {row} is no better than chance (1,800 of 2,000 scored)");
        }
    }
    let generators = results["gan"]["models"].as_array().expect("gan models");
    let parameters: Vec<u64> = generators.iter().map(|g| g["parameters"].as_u64().expect("parameters")).collect();
    assert_eq!(parameters[1], parameters[2], "the distilled student is the student architecture");
    assert!(parameters[0] > 10 * parameters[1], "{parameters:?}");
    for generator in generators {
        let psnr = generator["psnr"].as_f64().expect("PSNR");
        assert!(psnr.is_finite() && psnr > 0.0, "{generator}");
    }
    let checkpoint = out.path().join("checkpoints/dml_mutual/epoch-0001/optimizer.1.safetensors");
    assert!(
        checkpoint.is_file(),
        "both peers' optimiser states are checkpointed: {}",
        checkpoint.display()
    );
}
