//! The reproduction's rows: means, verdicts against the paper's direction, and the committed
//! Hinton reference `kd demo` prints.

use std::collections::BTreeMap;
use std::path::Path;

use kd_experiments::reproduce::{committed_hinton, comparisons, mean_std, row, seed_file, Group, Metric, SeedResult, Size};
use kd_experiments::settings::Error;

#[test]
fn improvement_is_positive_when_better_in_every_metric() {
    assert!((Metric::TestErrors.improvement_percent(146.0, 74.0) - 49.315).abs() < 1e-3);
    assert!((Metric::AccuracyPercent.improvement_percent(72.50, 73.33) - 100.0 * 0.83 / 27.5).abs() < 1e-9);
    assert!(Metric::AccuracyPercent.improvement_percent(72.50, 71.90) < 0.0);
    assert!(Metric::Psnr.improvement_percent(17.0, 18.7) > 9.99);
    assert!(Metric::BitsPerCharacter.improvement_percent(2.0, 2.5) < 0.0);
}

/// `kd demo` reads its reference from the committed file: it must parse, and a Hinton row,
/// once committed, must match the seed files beside it.
#[test]
fn the_committed_hinton_reference_is_the_seed_files_mean() -> Result<(), Error> {
    let Some(reference) = committed_hinton()? else { return Ok(()) };
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let hinton = comparisons()
        .into_iter()
        .find(|c| c.group == Group::Hinton)
        .ok_or("no Hinton comparison")?;
    let arms = [
        hinton.teacher.ok_or("the Hinton comparison has a teacher")?,
        hinton.baseline,
        hinton.method,
    ];
    let mut errors = [Vec::new(), Vec::new(), Vec::new()];
    for &seed in &reference.seeds {
        let result: SeedResult = serde_json::from_str(&std::fs::read_to_string(seed_file(&folder, Group::Hinton, seed))?)?;
        for (values, arm) in errors.iter_mut().zip(&arms) {
            values.push(result.arms[arm]);
        }
    }
    for (values, (mean, std)) in errors.iter().zip(reference.errors) {
        let (expected_mean, expected_std) = mean_std(values);
        assert!(
            (mean - expected_mean).abs() < 1e-9 && (std - expected_std).abs() < 1e-9,
            "{values:?}: {mean} ± {std}"
        );
    }
    Ok(())
}

#[test]
fn mean_and_sample_std() {
    let (mean, std) = mean_std(&[1.0, 2.0, 3.0, 6.0]);
    assert_eq!(mean, 3.0);
    assert!((std - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(mean_std(&[4.0]), (4.0, 0.0));
}

fn seed(seed: u64, baseline: f64, method: f64) -> SeedResult {
    SeedResult {
        group: "netaug".into(),
        seed,
        size: Size::Quick,
        arms: [
            ("tiny 784-16-16-10 alone".to_string(), baseline),
            ("tiny 784-16-16-10 with NetAug (inference: the tiny MLP alone)".to_string(), method),
        ]
        .into_iter()
        .collect(),
        seconds: 1.0,
    }
}

/// The verdict follows the paper's direction: every seed its way (three or more) is
/// reproduced, the mean only is direction only, the mean the other way is not reproduced.
#[test]
fn verdicts_follow_the_papers_direction_over_the_seeds() {
    let netaug = comparisons().into_iter().find(|c| c.group == Group::Netaug).expect("netaug");
    let verdict = |seeds: &[SeedResult]| row(&netaug, seeds).expect("a row")["verdict"].clone();
    assert_eq!(
        verdict(&[seed(0, 900.0, 850.0), seed(1, 910.0, 880.0), seed(2, 890.0, 889.0)]),
        "reproduced"
    );
    assert_eq!(
        verdict(&[seed(0, 900.0, 850.0), seed(1, 910.0, 880.0), seed(2, 890.0, 895.0)]),
        "direction only"
    );
    assert_eq!(verdict(&[seed(0, 900.0, 850.0), seed(1, 910.0, 880.0)]), "direction only");
    assert_eq!(
        verdict(&[seed(0, 900.0, 950.0), seed(1, 910.0, 880.0), seed(2, 890.0, 895.0)]),
        "not reproduced"
    );
    let json = row(&netaug, &[seed(0, 900.0, 850.0), seed(1, 910.0, 880.0), seed(2, 890.0, 895.0)]).expect("a row");
    assert_eq!(json["delta"]["values"], serde_json::json!([-50.0, -30.0, 5.0]));
    assert_eq!(json["delta"]["better_in"], "2 of 3");
    assert_eq!(json["arms"]["baseline"]["mean"], 900.0);
    let missing = row(
        &netaug,
        &[SeedResult {
            arms: BTreeMap::new(),
            ..seed(0, 1.0, 1.0)
        }],
    )
    .expect_err("no arms")
    .to_string();
    assert!(missing.contains("no arm `tiny 784-16-16-10 alone`"), "{missing}");
}

/// A paper whose method is worse (RKD in the CRD table) is reproduced by a worse method.
#[test]
fn a_paper_that_finds_the_method_worse_is_reproduced_by_a_worse_result() {
    let rkd = comparisons().into_iter().find(|c| c.method == "student + rkd").expect("rkd");
    assert!(!rkd.paper.claims_better);
    let seeds: Vec<SeedResult> = (0..3)
        .map(|s| SeedResult {
            group: "methods".into(),
            seed: s,
            size: Size::Quick,
            arms: [("teacher (CE)", 80.0), ("student alone (CE)", 100.0), ("student + rkd", 110.0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            seconds: 1.0,
        })
        .collect();
    let json = row(&rkd, &seeds).expect("a row");
    assert_eq!(json["verdict"], "reproduced");
    assert_eq!(json["paper"]["direction"], "worse");
    assert_eq!(json["arms"]["teacher"]["mean"], 80.0);
}
