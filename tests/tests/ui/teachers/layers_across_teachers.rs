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

#[distill(teachers(wide = Wide, deep = Deep), input = [4], match(relations(layers)))]
struct Student {
    #[distill(pair = wide.fc1)]
    fc1: Linear<4, 8>,
    act: ReLU,
    #[distill(pair = deep.fc2)]
    fc2: Linear<8, 8>,
    head: Linear<8, 3>,
}

fn main() {}
