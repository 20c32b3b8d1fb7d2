//! The MLP teacher/student pair several macro tests share.

use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
pub struct Teacher {
    fc1: Linear<8, 32>,
    act1: ReLU,
    fc2: Linear<32, 32>,
    act2: ReLU,
    head: Linear<32, 3>,
}

#[distill(teacher = Teacher, temp = 4.0, input = [8], match(features))]
pub struct Student {
    fc1: Linear<8, 6>,
    act1: ReLU,
    #[distill(pair)]
    fc2: Linear<6, 6>,
    act2: ReLU,
    head: Linear<6, 3>,
}
