//! Two different teachers, one student (You, Xu, Xu & Tao, *Learning from Multiple Teacher
//! Networks*, KDD 2017): the method comparison's two-convolutions-per-stage teacher and a wide
//! 5×5 teacher each learn MNIST; the student CNN learns from the labels alone, from each
//! teacher alone, and from both through `#[distill(teachers(...))]`, with the soft term against
//! their averaged probabilities. (With the forward KL, one term per teacher, `ensemble = each`,
//! gives the student the same gradient as the average, so it is not a separate arm.)

use dfdx::prelude::*;
use kd_core::data::mnist::Split;

use crate::models::{AveragedTeachersStudent, CnnStudentAlone, CnnTeacher, KdFromWideStudent, KdStudent, WideCnnTeacher};
use crate::recipes::{distil, train_on_labels};
use crate::regimes::Row;
use crate::settings::{Error, Options};

/// The arms' names, as the rows and `kd reproduce` call them.
pub const DEEP_TEACHER: &str = "teacher A (two convolutions per stage)";
/// The second teacher.
pub const WIDE_TEACHER: &str = "teacher B (wide 5x5 convolutions)";
/// The student on the labels.
pub const ALONE: &str = "student alone";
/// The student of teacher A.
pub const FROM_DEEP: &str = "student taught by teacher A";
/// The student of teacher B.
pub const FROM_WIDE: &str = "student taught by teacher B";
/// The student of both, averaged.
pub const FROM_BOTH_AVERAGED: &str = "student taught by both (averaged probabilities)";

/// Trains both teachers (`teacher_epochs`), then the student four ways (`epochs` each, the same
/// initial weights and data order for every student of a seed); returns a row per model.
pub fn two_teachers(options: &Options, train: &Split, test: &Split) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    let mut deep = Cpu::seed_from_u64(options.seed ^ 0x7A).build_module::<CnnTeacher, f32>();
    let fitted = train_on_labels("teacher_a", options.teacher_epochs, &mut deep, options, train, test)?;
    rows.push(Row::trained(DEEP_TEACHER, &fitted));
    let mut wide = Cpu::seed_from_u64(options.seed ^ 0x7B).build_module::<WideCnnTeacher, f32>();
    let fitted = train_on_labels("teacher_b", options.teacher_epochs, &mut wide, options, train, test)?;
    rows.push(Row::trained(WIDE_TEACHER, &fitted));

    // Every student starts from the weights `distil` draws for the seed; the one on the labels
    // from the same architecture and seed.
    let mut alone = Cpu::seed_from_u64(options.seed ^ 0x5EED).build_module::<CnnStudentAlone, f32>();
    let fitted = train_on_labels("student_alone", options.epochs, &mut alone, options, train, test)?;
    rows.push(Row::trained(ALONE, &fitted));
    let (fitted, _) = distil::<KdStudent, _, _, _>("student_from_a", &deep, options.seed, options, train, test)?;
    rows.push(Row::trained(FROM_DEEP, &fitted));
    let (fitted, _) = distil::<KdFromWideStudent, _, _, _>("student_from_b", &wide, options.seed, options, train, test)?;
    rows.push(Row::trained(FROM_WIDE, &fitted));
    let both = (deep, wide);
    let (fitted, _) = distil::<AveragedTeachersStudent, _, _, _>("student_from_both", &both, options.seed, options, train, test)?;
    rows.push(Row::trained(FROM_BOTH_AVERAGED, &fitted));
    Ok(rows)
}
