use dfdx::prelude::*;
use kd_core::nn::builders::{Conv2D, Flatten2D, MaxPool2D};
use kd_core::{distill, model};

// The teacher's Flatten2D is sized for a 28×28 input, but the student's `input` is 8×8.
#[model]
struct Teacher {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    flat: Flatten2D<1568>,
    head: Linear<1568, 3>,
}

#[distill(teacher = Teacher, input = [1, 8, 8])]
struct Student {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    flat: Flatten2D<64>,
    head: Linear<64, 3>,
}

fn main() {}
