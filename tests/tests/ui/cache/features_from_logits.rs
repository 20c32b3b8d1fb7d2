// A student with feature terms needs the teacher's forward pass each step, so it cannot learn
// from cached logits.
use dfdx::prelude::*;
use kd_core::distill::{distill_step_from_logits, Distill};
use kd_core::{distill, model};

#[model]
struct Teacher {
    fc1: Linear<8, 16>,
    act: ReLU,
    head: Linear<16, 3>,
}

#[distill(teacher = Teacher, input = [8], match(features))]
struct Student {
    #[distill(pair)]
    fc1: Linear<8, 4>,
    act: ReLU,
    head: Linear<4, 3>,
}

fn main() {
    let dev = Cpu::default();
    let mut distiller = Student::build_distiller(&dev);
    let mut opt = dfdx::optim::Sgd::new(&distiller, Default::default());
    let grads = distiller.alloc_grads();
    let x: Tensor<(usize, Const<8>), f32, _> = dev.zeros_like(&(2, Const));
    let logits: Tensor<(usize, Const<3>), f32, _> = dev.zeros_like(&(2, Const));
    let _ = distill_step_from_logits::<Student, _>(&mut distiller, logits, &mut opt, x, &[0, 1], grads, 0);
}
