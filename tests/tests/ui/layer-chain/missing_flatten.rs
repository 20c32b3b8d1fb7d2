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

// A Linear straight after the pool: the map was never flattened.
#[distill(teacher = Teacher, input = [1, 8, 8])]
struct Student {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    head: Linear<128, 3>,
}

fn main() {}
