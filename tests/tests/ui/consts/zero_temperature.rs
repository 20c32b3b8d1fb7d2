use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<4, 16>,
    act: ReLU,
    head: Linear<16, 3>,
}

const TEMPERATURE: f64 = 0.0;

#[distill(teacher = Teacher, input = [4], temp = TEMPERATURE)]
struct Student {
    fc1: Linear<4, 8>,
    act: ReLU,
    head: Linear<8, 3>,
}

fn main() {}
