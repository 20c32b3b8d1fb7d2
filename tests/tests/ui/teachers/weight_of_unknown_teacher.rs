use dfdx::prelude::*;
use kd_core::{distill, model};

#[model]
struct Wide {
    fc1: Linear<4, 16>,
    act: ReLU,
    head: Linear<16, 3>,
}

#[model]
struct Deep {
    fc1: Linear<4, 8>,
    act1: ReLU,
    fc2: Linear<8, 8>,
    act2: ReLU,
    head: Linear<8, 3>,
}

#[distill(teachers(wide = Wide, deep = Deep), teacher_weights(wdie = 2.0), input = [4])]
struct Student {
    fc1: Linear<4, 8>,
    act: ReLU,
    head: Linear<8, 3>,
}

fn main() {}
