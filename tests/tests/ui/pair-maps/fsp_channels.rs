use dfdx::prelude::*;
use kd_core::nn::builders::{Conv2D, Flatten2D};
use kd_core::{distill, model};

#[model]
struct Teacher {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    conv2: Conv2D<8, 16, 3, 1, 1>,
    relu2: ReLU,
    flat: Flatten2D<1024>,
    head: Linear<1024, 3>,
}

// FSP compares channels × channels matrices entry by entry: conv2 has 8 channels where the
// teacher's has 16.
#[distill(teacher = Teacher, input = [1, 8, 8], match(relations))]
struct Student {
    #[distill(pair)]
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    #[distill(pair)]
    conv2: Conv2D<8, 8, 3, 1, 1>,
    relu2: ReLU,
    flat: Flatten2D<512>,
    head: Linear<512, 3>,
}

fn main() {}
