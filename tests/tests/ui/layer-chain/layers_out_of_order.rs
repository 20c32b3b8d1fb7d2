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

// The pool comes after the flatten: it is given a vector, not a map.
#[distill(teacher = Teacher, input = [1, 8, 8])]
struct Student {
    conv1: Conv2D<1, 2, 3, 1, 1>,
    relu1: ReLU,
    flat: Flatten2D<128>,
    pool: MaxPool2D<2, 2>,
    head: Linear<128, 3>,
}

fn main() {}
