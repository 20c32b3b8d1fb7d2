use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<4, 16>,
    act: ReLU,
    fc2: Linear<16, 16>,
    head: Linear<16, 3>,
}

#[distill(teacher = Teacher, input = [4], match(features))]
struct Student {
    #[distill(attention)]
    fc1: Linear<4, 8>,
    act: ReLU,
    #[distill(pair)]
    fc2: Linear<8, 8>,
    head: Linear<8, 3>,
}

fn main() {}
