use dfdx::prelude::*;
use kd_core::nn::builders::{Conv2D, Flatten2D, MaxPool2D};
use kd_core::{distill, model};

#[model]
struct Teacher {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    flat: Flatten2D<128>,
    head: Linear<128, 3>,
}

// Flatten2D is sized by hand for a 4×4×4 map, but the pool gives 8×4×4.
#[distill(teacher = Teacher, input = [1, 8, 8])]
struct Student {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    flat: Flatten2D<64>,
    head: Linear<64, 3>,
}

fn main() {}
