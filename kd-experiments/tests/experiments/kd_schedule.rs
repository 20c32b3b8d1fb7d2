//! A `KdSchedule` in the CNN experiments' settings drives the distilled student's temperature and
//! weights epoch by epoch, and each epoch's metrics hold the values it trained with.

use kd_core::data::mnist;
use kd_core::distill::Distill;
use kd_core::train::{KdSchedule, Schedule};
use kd_experiments::models::{CnnTeacher, KdStudent};
use kd_experiments::recipes::distil;
use kd_experiments::settings::Options;

/// Each epoch's record without its wall time.
fn without_time(fitted: &kd_core::train::Fitted) -> Vec<serde_json::Value> {
    let mut records = fitted.records.clone();
    for record in &mut records {
        if let Some(fields) = record.as_object_mut() {
            fields.remove("seconds");
        }
    }
    records
}

fn value(record: &serde_json::Value, key: &str) -> f64 {
    record.get(key).and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
}

#[test]
fn a_schedule_sets_each_epochs_temperature_and_is_recorded() {
    let data = mnist::load_or_fetch().expect("MNIST");
    let (train, test) = (data.train.take(256), data.test.take(200));
    let out = tempfile::tempdir().expect("tempdir");
    let options = |name: &str, kd_schedule: Option<KdSchedule>| Options {
        out: out.path().join(name),
        epochs: 3,
        kd_schedule,
        ..Options::default()
    };
    use dfdx::prelude::*;
    let teacher = Cpu::seed_from_u64(1).build_module::<CnnTeacher, f32>();
    let run = |options: &Options| {
        let (fitted, _) = distil::<KdStudent, _, _, _>("student", &teacher, 5, options, &train, &test).expect("the student trains");
        fitted
    };

    let attribute = KdStudent::settings().kd;
    let plain = run(&options("plain", None));
    let constant = run(&options("constant", Some(KdSchedule::constant(&attribute))));
    let mut same = without_time(&constant);
    for record in &mut same {
        let fields = record.as_object_mut().expect("a record is an object");
        for key in ["temperature", "ce_weight", "kd_weight"] {
            assert!(fields.remove(key).is_some(), "the schedule's `{key}` is recorded");
        }
    }
    assert_eq!(
        same,
        without_time(&plain),
        "a constant schedule of the attribute's settings changes nothing"
    );

    let cooling = KdSchedule {
        temperature: Schedule::Linear { from: 8.0, to: 2.0 },
        ..KdSchedule::constant(&attribute)
    };
    let cooled = run(&options("cooled", Some(cooling)));
    let temperatures: Vec<f64> = cooled.records.iter().map(|r| value(r, "temperature")).collect();
    assert_eq!(temperatures, [8.0, 5.0, 2.0]);
    let kd = |fitted: &kd_core::train::Fitted, epoch: usize| value(&fitted.records[epoch], "kd");
    assert!(
        (0..3).all(|epoch| kd(&cooled, epoch) != kd(&plain, epoch)),
        "another temperature trains differently: {:?} vs {:?}",
        (0..3).map(|e| kd(&cooled, e)).collect::<Vec<_>>(),
        (0..3).map(|e| kd(&plain, e)).collect::<Vec<_>>()
    );
}
