use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<8, 32>,
    relu1: ReLU,
    fc2: Linear<32, 3>,
}

// Attention compares feature maps; a Linear gives a vector on both sides.
#[distill(teacher = Teacher, input = [8], match(attention))]
struct Student {
    #[distill(pair)]
    fc1: Linear<8, 32>,
    relu1: ReLU,
    fc2: Linear<32, 3>,
}

fn main() {}
