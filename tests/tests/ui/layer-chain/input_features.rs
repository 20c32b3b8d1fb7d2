use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<8, 32>,
    relu1: ReLU,
    fc2: Linear<32, 3>,
}

// The first layer takes 4 features, but each sample has 8.
#[distill(teacher = Teacher, input = [8])]
struct Student {
    fc1: Linear<4, 16>,
    relu1: ReLU,
    fc2: Linear<16, 3>,
}

fn main() {}
