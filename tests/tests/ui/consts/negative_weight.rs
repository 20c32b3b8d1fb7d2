use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<4, 16>,
    act: ReLU,
    head: Linear<16, 3>,
}

mod settings {
    pub const CE: f32 = -0.5;
}

#[distill(teacher = Teacher, input = [4], ce_weight = settings::CE)]
struct Student {
    fc1: Linear<4, 8>,
    act: ReLU,
    head: Linear<8, 3>,
}

fn main() {}
