use dfdx::prelude::*;
use kd_core::nn::builders::{Conv2D, Flatten2D};
use kd_core::{distill, model};

/// A layer of the user's own, without `kd_core::distill::Spatial`.
#[derive(Debug, Clone, Default)]
struct Identity;

impl ZeroSizedModule for Identity {}
impl NonMutableModule for Identity {}

impl<T> Module<T> for Identity {
    type Output = T;
    type Error = <Cpu as dfdx::tensor::HasErr>::Err;

    fn try_forward(&self, input: T) -> Result<T, Self::Error> {
        Ok(input)
    }
}

#[model]
struct Teacher {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    conv2: Conv2D<8, 8, 3, 1, 1>,
    flat: Flatten2D<512>,
    head: Linear<512, 3>,
}

// kd has no size rule for `Identity`; without `#[distill(keeps_shape)]` the pairing's size
// check cannot run.
#[distill(teacher = Teacher, input = [1, 8, 8], match(features))]
struct Student {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    same: Identity,
    #[distill(pair)]
    conv2: Conv2D<4, 4, 3, 1, 1>,
    flat: Flatten2D<256>,
    head: Linear<256, 3>,
}

fn main() {}
