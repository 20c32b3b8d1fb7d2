//! The findings the notebooks print: counted and worded from the data, for a quick run, the
//! validation files and the committed results.

use kd_experiments::findings::{committed, of_group, quick, validation, Validation};
use kd_experiments::reproduce::Group;

fn row(delta: [f64; 3], verdict: &str) -> serde_json::Value {
    serde_json::json!({
        "experiment": "Born-Again: generation 1 vs generation 0",
        "group": "born-again",
        "metric": "test_errors",
        "seeds": [0, 1, 2],
        "arms": {
            "baseline": { "model": "generation 0", "values": [10.0, 20.0, 30.0], "mean": 20.0, "std": 10.0 },
            "method": { "model": "generation 1", "values": [9.0, 22.0, 27.0], "mean": 19.33, "std": 9.3 },
        },
        "delta": { "values": delta, "mean": delta.iter().sum::<f64>() / 3.0, "std": 2.6, "better_in": "ignored" },
        "verdict": verdict,
    })
}

#[test]
fn a_finding_counts_its_wins_and_says_so_from_the_data() {
    let findings = of_group(&[row([-1.0, 2.0, -3.0], "direction only")], Group::BornAgain).expect("finding");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].better_in(), 2);
    assert_eq!(
        findings[0].sentence(),
        "Born-Again: generation 1 vs generation 0: generation 1 beats generation 0 in 2 of 3 seeds; on average it has fewer test errors (Δ = -0.7 ± 2.6); verdict: direction only."
    );
    assert!(of_group(&[row([1.0, 2.0, 3.0], "x")], Group::Dml).expect("none").is_empty());
}

#[test]
fn a_quick_run_gives_one_finding_per_comparison_over_its_seeds() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let findings = quick(Group::Netaug, &[0, 1], scratch.path()).expect("quick NetAug");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].seeds, [0, 1]);
    let arms = &findings[0].arms;
    for (d, (m, b)) in findings[0]
        .delta
        .values
        .iter()
        .zip(arms.method.spread.values.iter().zip(&arms.baseline.spread.values))
    {
        assert_eq!(*d, m - b, "a paired Δ is the method minus the baseline on one seed");
    }
}

#[test]
fn the_validation_files_read_back() {
    let sentences = validation(Validation::BornAgain).expect("Born-Again validation");
    assert_eq!(sentences.len(), 2, "{sentences:?}");
    assert!(sentences.iter().all(|s| s.contains("generation 1 ")), "{sentences:?}");
    let sentences = validation(Validation::Netaug).expect("NetAug validation");
    assert_eq!(sentences.len(), 6, "{sentences:?}");
    assert!(sentences.iter().all(|s| s.contains("with NetAug ")), "{sentences:?}");
    let sentences = validation(Validation::Methods).expect("methods validation");
    assert_eq!(sentences.len(), 2, "{sentences:?}");
    assert!(
        sentences.iter().all(|s| s.contains("last 5 epochs: ") && s.contains("teacher ")),
        "{sentences:?}"
    );
}

#[test]
fn the_committed_findings_read_back() {
    for group in [
        Group::BornAgain,
        Group::Dml,
        Group::Byot,
        Group::Netaug,
        Group::Language,
        Group::Methods,
    ] {
        let findings = committed(group).expect("committed findings");
        assert!(!findings.is_empty(), "{}: no committed finding", group.name());
        for finding in &findings {
            assert_eq!(finding.delta.values.len(), finding.seeds.len(), "{}", finding.experiment);
        }
    }
}
