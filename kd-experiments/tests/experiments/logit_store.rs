//! KD from the offline logit store: a store of all ten classes (written in two shards, merged
//! and packed) trains the Hinton student exactly as the live teacher does, and a store of
//! another k is refused by name.

use kd_core::train::Shard;
use kd_experiments::hinton::{self, Options};

/// A store holds the teacher's logits of the unjittered images, so the live run it is compared
/// with distils on the unjittered transfer set too.
fn options(out: std::path::PathBuf) -> Options {
    Options {
        train_images: Some(600),
        epochs: Some(1),
        transfer_augmentation: None,
        ..Options::new(out)
    }
}

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

#[test]
fn a_full_top_k_store_distils_exactly_like_the_live_teacher() {
    let out = tempfile::tempdir().expect("tempdir");
    let live = hinton::train(&options(out.path().join("live"))).expect("the three models train");
    let teacher = out.path().join("live/teacher.safetensors");

    let shards = [out.path().join("shard-0"), out.path().join("shard-1")];
    for (index, dir) in shards.iter().enumerate() {
        hinton::write_store(&options(dir.clone()), &teacher, dir, Some(10), Shard { index, count: 2 }).expect("shard written");
    }
    let store = out.path().join("store");
    kd_core::train::store::merge(&shards, &store).expect("merged");
    kd_core::train::store::pack(&store).expect("packed");

    let from_store =
        hinton::distil_from_store(&options(out.path().join("from-store")), &teacher, &store, Some(10)).expect("distilled from the store");
    assert_eq!(
        without_time(&from_store),
        without_time(&live.distilled),
        "loss terms and test errors of every epoch"
    );
    assert!(
        from_store.records[0]["kd"].as_f64().is_some_and(|kd| kd > 0.0),
        "{:?}",
        from_store.records[0]
    );

    let again = options(out.path().join("other-k"));
    let error = hinton::distil_from_store(&again, &teacher, &store, Some(5))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("the store's top_k is Some(10) but Some(5) was expected"), "{error}");
}
