use dfdx::prelude::*;
use kd_core::distill;

/// A plain dfdx teacher: a tuple of layers, not a `#[model]` struct.
type Teacher = (Linear<4, 16>, ReLU, Linear<16, 3>);

#[distill(teacher = Teacher, input = [4], match(features))]
struct Student {
    #[distill(pair = fc1)]
    fc1: Linear<4, 8>,
    act: ReLU,
    head: Linear<8, 3>,
}

fn main() {}
