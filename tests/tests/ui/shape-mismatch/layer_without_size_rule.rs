use dfdx::prelude::*;
use kd_core::nn::builders::{Conv2D, Flatten2D};
use kd_core::{distill, model};

#[model]
struct Teacher {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    conv2: Conv2D<8, 8, 3, 1, 1>,
    flat: Flatten2D<512>,
    head: Linear<512, 3>,
}

// `Bias2D` has no size rule in kd; without `#[distill(keeps_shape)]` the check cannot run.
#[distill(teacher = Teacher, input = [1, 8, 8], match(features))]
struct Student {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    bias: dfdx::nn::builders::Bias2D<4>,
    #[distill(pair)]
    conv2: Conv2D<4, 4, 3, 1, 1>,
    flat: Flatten2D<256>,
    head: Linear<256, 3>,
}

fn main() {}
