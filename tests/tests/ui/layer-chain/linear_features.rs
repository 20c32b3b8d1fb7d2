use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<8, 32>,
    relu1: ReLU,
    fc2: Linear<32, 3>,
}

// fc2 is sized for 12 features, but fc1 gives 16.
#[distill(teacher = Teacher, input = [8])]
struct Student {
    fc1: Linear<8, 16>,
    relu1: ReLU,
    fc2: Linear<12, 3>,
}

fn main() {}
