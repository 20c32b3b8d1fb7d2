//! The macro adds no maths: a `#[distill]`-generated step equals a hand-written dfdx step of
//! the same objective, with the same weights, in value, gradients and updated parameters.

use dfdx::optim::{Sgd, SgdConfig};
use dfdx::prelude::*;
use kd_core::assert_close;
use kd_core::distill::{distill_step, Distill};
use kd_core::loss::{hint_loss, kd_with_ce_loss, KdConfig};
use kd_core::testing::Tolerance;

use crate::common::{Student, Teacher};

#[test]
fn generated_step_equals_the_hand_written_step() {
    let dev = Cpu::seed_from_u64(42);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = Student::build_distiller(&dev);

    // The same student and adapter, as plain dfdx modules holding the same weights.
    let mut hand = dev.build_module::<((Linear<8, 6>, ReLU, Linear<6, 6>), (ReLU, Linear<6, 3>), Linear<6, 32>), f32>();
    hand.0 .0 = distiller.student.fc1.clone();
    hand.0 .2 = distiller.student.fc2.clone();
    hand.1 .1 = distiller.student.head.clone();
    hand.2 = distiller.adapters.0.clone();

    let x: Tensor<(usize, Const<8>), f32, _> = dev.sample_normal_like(&(10, Const));
    let targets: Vec<usize> = (0..10).map(|i| (i * 7) % 3).collect();

    // Hand-written: teacher taps, student taps, the three terms.
    let t_fc2 = teacher.act1.forward(teacher.fc1.forward(x.clone()));
    let t_fc2 = teacher.fc2.forward(t_fc2);
    let t_logits = teacher.head.forward(teacher.act2.forward(t_fc2.clone()));
    let mut hand_grads = hand.alloc_grads();
    let s_fc2 = hand.0.forward_mut(x.clone().traced(hand_grads));
    let (s_fc2, tape) = s_fc2.split_tape();
    let s_logits = hand.1.forward_mut(s_fc2.clone().put_tape(tape));
    let hint = hint_loss(hand.2.forward(s_fc2.retaped::<OwnedTape<f32, Cpu>>()), t_fc2).unwrap();
    let hand_loss = kd_with_ce_loss(s_logits, t_logits, &targets, &KdConfig::default())
        .unwrap()
        .add("hint.fc2", 100.0, hint);
    let hand_terms = hand_loss.terms().to_vec();
    hand_grads = hand_loss.into_total().backward();

    // Generated.
    let grads = distiller.alloc_grads();
    let macro_loss = Student::distill_loss(&mut distiller, &teacher, x.clone(), &targets, grads).unwrap();
    let macro_terms = macro_loss.terms().to_vec();
    assert_eq!(
        macro_terms.iter().map(|t| t.name).collect::<Vec<_>>(),
        hand_terms.iter().map(|t| t.name).collect::<Vec<_>>()
    );
    let tight = Tolerance::rel_abs(1e-6, 1e-7);
    for (m, h) in macro_terms.iter().zip(&hand_terms) {
        assert_close!(m.value, h.value, tight);
        assert_eq!(m.weight, h.weight, "{}", m.name);
    }
    let macro_grads = macro_loss.into_total().backward();
    assert_close!(
        macro_grads.get(&distiller.student.fc1.weight),
        hand_grads.get(&hand.0 .0.weight),
        tight
    );
    assert_close!(
        macro_grads.get(&distiller.student.head.bias),
        hand_grads.get(&hand.1 .1.bias),
        tight
    );
    assert_close!(macro_grads.get(&distiller.adapters.0.weight), hand_grads.get(&hand.2.weight), tight);

    // And one optimiser step through `distill_step` moves the weights as the hand-written update.
    let config = SgdConfig {
        lr: 0.05,
        momentum: None,
        weight_decay: None,
    };
    let mut opt = Sgd::new(&distiller, config);
    let before = distiller.student.fc2.weight.as_vec();
    let grads = distiller.alloc_grads();
    distill_step::<Student, _>(&mut distiller, &teacher, &mut opt, x, &targets, grads, 0).expect("finite");
    let mut hand_opt = Sgd::new(&hand, config);
    hand_opt.update(&mut hand, &hand_grads).expect("update");
    assert_ne!(distiller.student.fc2.weight.as_vec(), before);
    assert_close!(distiller.student.fc2.weight.clone(), hand.0 .2.weight.clone(), tight);
    assert_close!(distiller.adapters.0.bias.clone(), hand.2.bias.clone(), tight);
}
