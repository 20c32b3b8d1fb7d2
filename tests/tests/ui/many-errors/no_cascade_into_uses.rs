//! A mistake in the attribute gives its one message; code that uses the student still
//! type-checks against the stub the macro emits next to the error.
use dfdx::prelude::*;
use kd_core::distill::Distill;
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<4, 16>,
    head: Linear<16, 3>,
}

#[distill(teacher = Teacher, input = [4], temp = 0.0, match(features))]
struct Student {
    #[distill(pair)]
    fc1: Linear<4, 8>,
    head: Linear<8, 3>,
}

fn main() {
    let dev = Cpu::default();
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = Student::build_distiller(&dev);
    let x: Tensor<(usize, Const<4>), f32, _> = dev.zeros_like(&(2, Const));
    let _ = Student::distill_loss(&mut distiller, &teacher, x, &[0, 1], Gradients::leaky());
}
