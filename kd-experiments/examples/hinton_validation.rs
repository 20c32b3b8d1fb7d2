//! Chooses the Hinton teacher's recipe on a validation split (the last 10,000 training images),
//! never on the test set: trains the teacher of each recipe for the same epochs on the first
//! 50,000 images and prints its held-out errors per epoch.
//!
//! `cargo run --release -p kd-experiments --example hinton_validation -- EPOCHS RECIPE...`
//! where RECIPE is `adam`, `adam-cosine` (`hinton::TeacherRecipe::AdamCosine`) or
//! `sgd:RATE:MAXNORM:FINAL` (FINAL: the last epoch's rate over RATE; the papers' are
//! `sgd:10:15:0.0025`), optionally followed by
//! `+DEGREES:SCALE:SHIFT:ALPHA:SIGMA` to train on Simard et al.'s affine and elastic
//! distortion (`kd_core::train::Distortion`) in place of the ±2 px jitter. Each run's folder is
//! `target/hinton-validation/RECIPE-EPOCHS`; its `teacher.metrics.jsonl` holds the curve.
//!
//! `... --example hinton_validation -- students TEACHER_RECIPE TEACHER_EPOCHS STUDENT_EPOCHS
//! STUDENTS...` then trains both students from that recipe's trained teacher (copied, not
//! retrained) for each STUDENTS, which is `SCALE` (SGD, the learning rate times SCALE) or
//! `adam:SCALE` or `adam-cosine:SCALE` (`hinton::StudentRecipe::Adam`, `AdamCosine`), in
//! `target/hinton-validation/students-TEACHER-E-STUDENTS` (the teacher is read from the first
//! command's folder), and prints their held-out errors per epoch. `KD_TRANSFER=none` distils on the
//! unjittered transfer set instead of the recipe's jittered images, and `KD_TRANSFER=teacher`
//! on images augmented as the teacher's were (`hinton::Options::transfer_augmentation`).

use std::path::Path;

use kd_core::train::{Augmentation, Distortion};
use kd_experiments::hinton::{self, StudentRecipe, TeacherRecipe};

/// `RECIPE[+DEGREES:SCALE:SHIFT:ALPHA:SIGMA]`: the teacher's recipe and augmentation.
fn parse_teacher(name: &str) -> Result<(TeacherRecipe, Augmentation), String> {
    let Some((recipe, distortion)) = name.split_once('+') else {
        return Ok((parse(name)?, Augmentation::HINTON_JITTER));
    };
    let values = distortion
        .split(':')
        .map(|v| v.parse::<f32>().map_err(|e| format!("{name}: distortion: {e}")))
        .collect::<Result<Vec<f32>, String>>()?;
    let [max_degrees, max_scale, max_shift, elastic_alpha, elastic_sigma] = values[..] else {
        return Err(format!("{name}: expected +DEGREES:SCALE:SHIFT:ALPHA:SIGMA"));
    };
    let distortion = Distortion {
        max_degrees,
        max_scale,
        max_shift,
        elastic_alpha,
        elastic_sigma,
    };
    Ok((parse(recipe)?, Augmentation::Distort(distortion)))
}

fn parse(recipe: &str) -> Result<TeacherRecipe, String> {
    match recipe {
        "adam" => return Ok(TeacherRecipe::Adam),
        "adam-cosine" => return Ok(TeacherRecipe::AdamCosine),
        _ => {}
    }
    let parts: Vec<&str> = recipe.split(':').collect();
    match parts.as_slice() {
        ["sgd", rate, bound, fraction] => Ok(TeacherRecipe::DropoutSgd {
            initial_rate: rate.parse().map_err(|e| format!("{recipe}: rate: {e}"))?,
            max_norm: bound.parse().map_err(|e| format!("{recipe}: max-norm: {e}"))?,
            final_fraction: fraction.parse().map_err(|e| format!("{recipe}: final fraction: {e}"))?,
        }),
        _ => Err(format!("{recipe}: expected `adam`, `adam-cosine` or `sgd:RATE:MAXNORM:FINAL`")),
    }
}

/// The folder of the teacher trained by `recipe` for `epochs`.
fn teacher_folder(root: &Path, recipe: &str, epochs: impl std::fmt::Display) -> std::path::PathBuf {
    root.join(format!("{}-{epochs}", recipe.replace(':', "_")))
}

/// `SCALE`, `adam:SCALE` or `adam-cosine:SCALE`: the students' recipe and learning-rate scale.
fn parse_students(students: &str) -> Result<(StudentRecipe, f64), String> {
    let (recipe, scale) = match students.split_once(':') {
        Some(("adam", scale)) => (StudentRecipe::Adam, scale),
        Some(("adam-cosine", scale)) => (StudentRecipe::AdamCosine, scale),
        Some(_) => return Err(format!("{students}: expected SCALE, adam:SCALE or adam-cosine:SCALE")),
        None => (StudentRecipe::Sgd, students),
    };
    Ok((recipe, scale.parse().map_err(|e| format!("{students}: scale: {e}"))?))
}

fn students(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [recipe, teacher_epochs, student_epochs, scales @ ..] = args else {
        return Err("usage: hinton_validation students TEACHER_RECIPE TEACHER_EPOCHS STUDENT_EPOCHS STUDENTS...".into());
    };
    let (teacher_recipe, teacher_augmentation) = parse_teacher(recipe)?;
    let root = Path::new("target/hinton-validation");
    let transfer = std::env::var("KD_TRANSFER").unwrap_or_else(|_| "jitter".into());
    let (transfer_augmentation, suffix) = match transfer.as_str() {
        "jitter" => (Some(Augmentation::HINTON_JITTER), ""),
        "teacher" => (Some(teacher_augmentation), "-teacher"),
        "none" => (None, "-unjittered"),
        other => return Err(format!("KD_TRANSFER={other}: expected jitter, teacher or none").into()),
    };
    let teacher = teacher_folder(root, recipe, teacher_epochs);
    let teacher_name = teacher.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    for students in scales {
        let (student_recipe, scale) = parse_students(students)?;
        let out = root.join(format!(
            "students-{teacher_name}-{student_epochs}-{}{suffix}",
            students.replace(':', "_")
        ));
        hinton::copy_teacher(&teacher, &out)?;
        let outcome = hinton::train(&hinton::Options {
            epochs: Some(student_epochs.parse()?),
            teacher_epochs: Some(teacher_epochs.parse()?),
            teacher_recipe,
            teacher_augmentation,
            student_recipe,
            learning_rate_scale: scale,
            validation: true,
            resume: true,
            transfer_augmentation,
            ..hinton::Options::new(&out)
        })?;
        for (name, fitted) in [("alone", &outcome.alone), ("distilled", &outcome.distilled)] {
            let curve: Vec<String> = fitted.curve("test_errors").iter().map(|(_, e)| format!("{e:.0}")).collect();
            println!("{students}, student {name}: held-out errors per epoch: {}", curve.join(" "));
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("students") {
        return students(&args[1..]);
    }
    let (epochs, recipes) = args.split_first().ok_or("usage: hinton_validation EPOCHS RECIPE...")?;
    let epochs: usize = epochs.parse()?;
    for name in recipes {
        let (recipe, augmentation) = parse_teacher(name)?;
        let out = teacher_folder(Path::new("target/hinton-validation"), name, epochs);
        let trained = hinton::train_teacher_only(&hinton::Options {
            epochs: Some(epochs),
            teacher_recipe: recipe,
            teacher_augmentation: augmentation,
            validation: true,
            ..hinton::Options::new(out)
        });
        // A recipe that diverges is a result too: say so and try the next.
        let outcome = match trained {
            Ok(outcome) => outcome,
            Err(error) => {
                println!("{name}: stopped: {error}");
                continue;
            }
        };
        let curve: Vec<String> = outcome.curve("test_errors").iter().map(|(_, e)| format!("{e:.0}")).collect();
        println!("{name}: held-out errors per epoch (of 10,000): {}", curve.join(" "));
    }
    Ok(())
}
