use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<8, 32>,
    relu1: ReLU,
    fc2: Linear<32, 3>,
}

// A field that is not a layer: every field of the struct is applied in order.
#[distill(teacher = Teacher, input = [8])]
struct Student {
    fc1: Linear<8, 16>,
    relu1: ReLU,
    fc2: Linear<16, 3>,
    name: String,
}

fn main() {}
