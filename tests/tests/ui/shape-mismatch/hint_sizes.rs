use dfdx::prelude::*;
use kd_core::nn::builders::{Conv2D, Flatten2D, MaxPool2D};
use kd_core::{distill, model};

#[model]
struct Teacher {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    conv2: Conv2D<8, 16, 3, 1, 1>,
    relu2: ReLU,
    pool: MaxPool2D<4, 4>,
    flat: Flatten2D<64>,
    head: Linear<64, 3>,
}

// The student pools before conv2, so its conv2 map is 4×4 where the teacher's is 8×8: a 1×1
// hint adapter cannot align them.
#[distill(teacher = Teacher, input = [1, 8, 8], match(features))]
struct Student {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    #[distill(pair)]
    conv2: Conv2D<4, 8, 3, 1, 1>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<32>,
    head: Linear<32, 3>,
}

fn main() {}
