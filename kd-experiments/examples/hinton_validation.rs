//! Chooses the Hinton teacher's recipe on a validation split (the last 10,000 training images),
//! never on the test set: trains the teacher of each recipe for the same epochs on the first
//! 50,000 images and prints its held-out errors per epoch.
//!
//! `cargo run --release -p kd-experiments --example hinton_validation -- EPOCHS RECIPE...`
//! where RECIPE is `adam` or `sgd:RATE:MAXNORM:FINAL` (FINAL: the last epoch's rate over
//! RATE; the papers' are `sgd:10:15:0.0025`). Each run's folder is
//! `target/hinton-validation/RECIPE`; its `teacher.metrics.jsonl` holds the curve.

use kd_experiments::hinton::{self, TeacherRecipe};

fn parse(recipe: &str) -> Result<TeacherRecipe, String> {
    if recipe == "adam" {
        return Ok(TeacherRecipe::Adam);
    }
    let parts: Vec<&str> = recipe.split(':').collect();
    match parts.as_slice() {
        ["sgd", rate, bound, fraction] => Ok(TeacherRecipe::DropoutSgd {
            initial_rate: rate.parse().map_err(|e| format!("{recipe}: rate: {e}"))?,
            max_norm: bound.parse().map_err(|e| format!("{recipe}: max-norm: {e}"))?,
            final_fraction: fraction.parse().map_err(|e| format!("{recipe}: final fraction: {e}"))?,
        }),
        _ => Err(format!("{recipe}: expected `adam` or `sgd:RATE:MAXNORM:FINAL`")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (epochs, recipes) = args.split_first().ok_or("usage: hinton_validation EPOCHS RECIPE...")?;
    let epochs: usize = epochs.parse()?;
    for name in recipes {
        let recipe = parse(name)?;
        let out = std::path::Path::new("target/hinton-validation").join(name.replace(':', "_"));
        let trained = hinton::train_teacher_only(&hinton::Options {
            epochs: Some(epochs),
            teacher_recipe: recipe,
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
