//! f64 central finite differences against dfdx's backward for the composite losses, whose
//! hand-assembled derivatives (normalisations, Gram matrices, clamps, angles) are the easiest to
//! get wrong, and for the gradient-based attention term, whose weight gradient is itself a
//! finite-difference Hessian-vector product.
//!
//! Inputs are deterministic and kept away from the losses' kinks (Huber's |x| = 1, the AB
//! margins, zero norms), where a central difference is not a derivative.

use dfdx::prelude::*;
use kd_core::assert_close;
use kd_core::loss::*;
use kd_core::ops::value_of;
use kd_core::testing::Tolerance;

type Taped<S> = Tensor<S, f64, Cpu, OwnedTape<f64, Cpu>>;

const STEP: f64 = 1e-6;
const AGREEMENT: Tolerance = Tolerance::rel_abs(1e-6, 1e-9);

fn wavy<S: ConstShape>(seed: f64, scale: f64) -> Tensor<S, f64, Cpu> {
    let n = S::default().num_elements();
    let data = (0..n)
        .map(|i| scale * ((i as f64 * 2.39 + seed).sin() + 0.5 * (i as f64 * 0.77 + 2.0 * seed).cos()))
        .collect();
    Cpu::default().tensor_from_vec(data, S::default())
}

/// Checks `loss`'s gradient at `x` against central differences in every coordinate.
fn check_gradient<S: ConstShape>(what: &str, x: Tensor<S, f64, Cpu>, loss: impl Fn(Taped<S>) -> Taped<Rank0>) {
    let analytic = loss(x.leaky_trace()).backward().get(&x).as_vec();
    let base = x.as_vec();
    let numeric: Vec<f64> = (0..base.len())
        .map(|i| {
            let at = |delta: f64| {
                let mut moved = base.clone();
                moved[i] += delta;
                value_of(&loss(Cpu::default().tensor_from_vec(moved, S::default()).leaky_trace()))
            };
            (at(STEP) - at(-STEP)) / (2.0 * STEP)
        })
        .collect();
    assert!(
        numeric.iter().any(|g| g.abs() > 1e-6),
        "{what}: the gradient is trivially zero; pick other inputs"
    );
    kd_core::testing::assert_close_impl(&analytic, &numeric, AGREEMENT, what);
}

#[test]
fn rkd_angle() {
    let teacher = wavy::<Rank2<5, 4>>(2.0, 1.0);
    check_gradient("rkd_angle_loss", wavy::<Rank2<5, 3>>(1.0, 1.0), |s| {
        rkd_angle_loss(s, teacher.clone()).unwrap()
    });
}

#[test]
fn rkd_distance() {
    let teacher = wavy::<Rank2<5, 4>>(3.0, 1.0);
    check_gradient("rkd_distance_loss", wavy::<Rank2<5, 3>>(4.0, 1.0), |s| {
        rkd_distance_loss(s, teacher.clone()).unwrap()
    });
}

#[test]
fn attention_normalisation_in_both_conventions_and_two_powers() {
    let teacher = wavy::<Rank4<2, 5, 3, 2>>(5.0, 1.0);
    for (p, convention) in [
        (2.0, AtConvention::AuthorsCode),
        (2.0, AtConvention::Paper),
        (3.0, AtConvention::AuthorsCode),
    ] {
        check_gradient(&format!("at_loss p={p} {convention:?}"), wavy::<Rank4<2, 3, 3, 2>>(6.0, 1.0), |s| {
            at_loss(s, teacher.clone(), p, convention).unwrap()
        });
    }
}

#[test]
fn nst_with_every_kernel() {
    let teacher = wavy::<Rank4<2, 4, 2, 3>>(7.0, 1.0);
    for kernel in [
        NstKernel::Linear,
        NstKernel::default(),
        NstKernel::Polynomial { degree: 3, constant: 0.5 },
        NstKernel::Gaussian { sigma: 0.8 },
    ] {
        check_gradient(&format!("nst_loss {kernel:?}"), wavy::<Rank4<2, 3, 2, 3>>(8.0, 1.0), |s| {
            nst_loss(s, teacher.clone(), kernel).unwrap()
        });
    }
}

#[test]
fn similarity_preserving() {
    let teacher = wavy::<Rank4<4, 3, 2, 2>>(9.0, 1.0);
    check_gradient("sp_loss", wavy::<Rank4<4, 2, 2, 2>>(10.0, 1.0), |s| {
        sp_loss(s, teacher.clone()).unwrap()
    });
}

#[test]
fn fsp_through_both_layers() {
    let (t1, t2) = (wavy::<Rank4<2, 3, 2, 2>>(11.0, 1.0), wavy::<Rank4<2, 2, 2, 2>>(12.0, 1.0));
    let second = wavy::<Rank4<2, 2, 2, 2>>(13.0, 1.0);
    check_gradient("fsp_loss (first layer)", wavy::<Rank4<2, 3, 2, 2>>(14.0, 1.0), |first| {
        fsp_loss(
            fsp_matrix(first, second.clone()).unwrap(),
            fsp_matrix(t1.clone(), t2.clone()).unwrap(),
            FspConvention::Paper,
        )
        .unwrap()
    });
}

#[test]
fn decoupled_kd() {
    let teacher = wavy::<Rank2<3, 5>>(15.0, 2.0);
    let config = DkdConfig::default();
    check_gradient("dkd_loss", wavy::<Rank2<3, 5>>(16.0, 2.0), |s| {
        dkd_loss(s, teacher.clone(), &[1, 4, 0], &config).unwrap()
    });
}

#[test]
fn logit_divergences() {
    let teacher = wavy::<Rank2<3, 5>>(17.0, 2.0);
    let student = || wavy::<Rank2<3, 5>>(18.0, 2.0);
    check_gradient("reverse_kl_loss", student(), |s| reverse_kl_loss(s, teacher.clone(), 2.0).unwrap());
    check_gradient("tvd_loss", student(), |s| tvd_loss(s, teacher.clone(), 2.0).unwrap());
    for beta in [0.0, 0.3, 1.0] {
        check_gradient(&format!("jsd_loss, beta {beta}"), student(), |s| {
            jsd_loss(s, teacher.clone(), 3.0, beta).unwrap()
        });
    }
    let config = DistConfig {
        beta: 1.0,
        gamma: 2.0,
        temperature: 2.0,
    };
    check_gradient("dist_loss", student(), |s| dist_loss(s, teacher.clone(), &config).unwrap());
}

type Mlp = (
    dfdx::nn::modules::Linear<3, 4, f64, Cpu>,
    dfdx::nn::modules::Tanh,
    dfdx::nn::modules::Linear<4, 3, f64, Cpu>,
);

/// `½‖J_S(W) − J_T‖²` as a function of the student's weights, by finite differences in every
/// weight, against [`gradient_at_loss`]'s backward (itself a finite-difference HVP).
#[test]
fn gradient_attention_against_a_full_finite_difference_gradient() {
    let dev = Cpu::default();
    let build = |seed: f64| {
        let mut mlp: Mlp = dev.build_module::<(builders::Linear<3, 4>, builders::Tanh, builders::Linear<4, 3>), f64>();
        mlp.0.weight = wavy(seed, 0.8);
        mlp.0.bias = wavy(seed + 1.0, 0.3);
        mlp.2.weight = wavy(seed + 2.0, 0.8);
        mlp.2.bias = wavy(seed + 3.0, 0.3);
        mlp
    };
    let (student, teacher) = (build(20.0), build(30.0));
    let input: Tensor<Rank2<4, 3>, f64, _> = wavy(40.0, 1.0);
    let targets = [0, 2, 1, 1];
    let teacher_grad = input_gradient(&teacher, input.clone(), &targets).unwrap();
    let objective = |model: &Mlp| {
        let j = input_gradient(model, input.clone(), &targets).unwrap() - teacher_grad.clone();
        0.5 * j.as_vec().iter().map(|v| v * v).sum::<f64>()
    };

    let loss = gradient_at_loss(
        &student,
        input.clone().traced(student.alloc_grads()),
        &targets,
        teacher_grad.clone(),
        1e-5,
    )
    .unwrap();
    assert_close!(value_of(&loss), objective(&student), Tolerance::F64);
    let grads = loss.backward();

    let h = 1e-6;
    let numeric = |field: usize| -> Vec<f64> {
        let len = match field {
            0 => 12,
            1 => 4,
            2 => 12,
            _ => 3,
        };
        (0..len)
            .map(|i| {
                let at = |delta: f64| {
                    let mut moved = student.clone();
                    match field {
                        0 => moved.0.weight = bump(&moved.0.weight, i, delta),
                        1 => moved.0.bias = bump(&moved.0.bias, i, delta),
                        2 => moved.2.weight = bump(&moved.2.weight, i, delta),
                        _ => moved.2.bias = bump(&moved.2.bias, i, delta),
                    }
                    objective(&moved)
                };
                (at(h) - at(-h)) / (2.0 * h)
            })
            .collect()
    };
    let tol = Tolerance::rel_abs(1e-5, 1e-8);
    kd_core::testing::assert_close_impl(&grads.get(&student.0.weight).as_vec(), &numeric(0), tol, "d/dW1");
    kd_core::testing::assert_close_impl(&grads.get(&student.0.bias).as_vec(), &numeric(1), tol, "d/db1");
    kd_core::testing::assert_close_impl(&grads.get(&student.2.weight).as_vec(), &numeric(2), tol, "d/dW2");
    kd_core::testing::assert_close_impl(&grads.get(&student.2.bias).as_vec(), &numeric(3), tol, "d/db2");
}

fn bump<S: ConstShape>(t: &Tensor<S, f64, Cpu>, index: usize, delta: f64) -> Tensor<S, f64, Cpu> {
    let mut data = t.as_vec();
    data[index] += delta;
    Cpu::default().tensor_from_vec(data, S::default())
}

mod spatial {
    use super::*;
    use kd_core::spatial::{adaptive_avg_pool2d, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, Conv2dGeometry};

    fn geometry(kernel: usize, stride: usize, padding: usize, dilation: usize, groups: usize) -> Conv2dGeometry {
        Conv2dGeometry::square(kernel)
            .with_stride(stride)
            .with_padding(padding)
            .with_dilation(dilation)
            .with_groups(groups)
    }

    /// `Σ out · probe` with a fixed probe, so every output element's gradient is exercised.
    fn probed<S: Shape>(out: Taped<S>) -> Taped<Rank0> {
        let n = out.shape().num_elements();
        let probe = (0..n).map(|i| (i as f64 * 1.3).sin() + 0.2).collect();
        let probe = Cpu::default().tensor_from_vec(probe, (n,));
        (out.reshape_like(&(n,)) * probe).sum()
    }

    #[test]
    fn conv2d_in_its_input_and_its_weight() {
        let weight = wavy::<Rank4<4, 1, 3, 3>>(51.0, 0.5);
        let input = wavy::<Rank4<2, 2, 5, 4>>(52.0, 1.0);
        let g = geometry(3, 2, 1, 1, 2);
        check_gradient("conv2d wrt input", input.clone(), |x| {
            probed(conv2d(x, weight.retaped(), None, g).expect("fits"))
        });
        check_gradient("conv2d wrt weight", weight.clone(), |w| {
            probed(conv2d(input.retaped(), w, None, g).expect("fits"))
        });
    }

    #[test]
    fn conv_transpose2d_in_its_input_and_its_weight() {
        let weight = wavy::<Rank4<2, 3, 3, 3>>(53.0, 0.5);
        let input = wavy::<Rank4<1, 2, 4, 3>>(55.0, 1.0);
        let g = geometry(3, 2, 1, 1, 1);
        check_gradient("conv_transpose2d wrt input", input.clone(), |x| {
            probed(conv_transpose2d(x, weight.retaped(), None, g, (1, 0)).expect("fits"))
        });
        check_gradient("conv_transpose2d wrt weight", weight.clone(), |w| {
            probed(conv_transpose2d(input.retaped(), w, None, g, (1, 0)).expect("fits"))
        });
    }

    #[test]
    fn pooling() {
        // Distinct values: a central difference is only a derivative away from max-pool ties.
        check_gradient("max_pool2d", wavy::<Rank4<2, 2, 6, 5>>(57.0, 1.0), |x| {
            probed(max_pool2d(x, geometry(3, 2, 1, 1, 1)).expect("fits"))
        });
        check_gradient("avg_pool2d", wavy::<Rank4<2, 2, 6, 5>>(58.0, 1.0), |x| {
            probed(avg_pool2d(x, geometry(2, 2, 1, 1, 1)).expect("fits"))
        });
        check_gradient("adaptive_avg_pool2d", wavy::<Rank4<2, 2, 7, 5>>(59.0, 1.0), |x| {
            probed(adaptive_avg_pool2d(x, (3, 2)))
        });
    }
}
