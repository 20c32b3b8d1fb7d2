use dfdx::prelude::*;
use kd_core::nn::builders::{Conv2D, Flatten2D, MaxPool2D};
use kd_core::{distill, model};

// Nineteen layers before the head: the size check walks all of them.
#[model]
struct Teacher {
    c1: Conv2D<1, 4, 3, 1, 1>,
    r1: ReLU,
    c2: Conv2D<4, 4, 3, 1, 1>,
    r2: ReLU,
    c3: Conv2D<4, 4, 3, 1, 1>,
    r3: ReLU,
    c4: Conv2D<4, 4, 3, 1, 1>,
    r4: ReLU,
    c5: Conv2D<4, 4, 3, 1, 1>,
    r5: ReLU,
    c6: Conv2D<4, 4, 3, 1, 1>,
    r6: ReLU,
    c7: Conv2D<4, 4, 3, 1, 1>,
    r7: ReLU,
    c8: Conv2D<4, 4, 3, 1, 1>,
    r8: ReLU,
    pool: MaxPool2D<2, 2>,
    c9: Conv2D<4, 8, 3, 1, 1>,
    r9: ReLU,
    flat: Flatten2D<128>,
    head: Linear<128, 3>,
}

// The teacher's c8 map is 8×8 (before its pool); the student's conv2 is 4×4.
#[distill(teacher = Teacher, input = [1, 8, 8], match(features))]
struct Student {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    #[distill(pair = c8)]
    conv2: Conv2D<4, 4, 3, 1, 1>,
    relu2: ReLU,
    flat: Flatten2D<64>,
    head: Linear<64, 3>,
}

fn main() {}
