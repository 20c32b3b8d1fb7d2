//! Every loss against PyTorch: values and gradients with respect to the student's inputs, from
//! `tests/reference/gen_losses.py` (torch, float64, transcribed from each method's reference
//! implementation) and its committed output `tests/reference/losses.json`.
//!
//! Each check runs in f64 (tight tolerance) and f32 (the f32 preset).

use std::collections::HashMap;
use std::sync::OnceLock;

use dfdx::prelude::*;
use kd_core::assert_close;
use kd_core::loss::*;
use kd_core::ops::value_of;
use kd_core::testing::Tolerance;
use serde::Deserialize;

#[derive(Deserialize)]
struct Array {
    shape: Vec<usize>,
    data: Vec<f64>,
}

#[derive(Deserialize)]
struct Case {
    settings: serde_json::Value,
    inputs: HashMap<String, Array>,
    value: f64,
    grads: HashMap<String, Array>,
    #[serde(default)]
    output: Option<Array>,
}

#[derive(Deserialize)]
struct Fixture {
    cases: HashMap<String, Case>,
}

fn case(name: &str) -> &'static Case {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    let fixture = FIXTURE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/losses.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
    });
    fixture
        .cases
        .get(name)
        .unwrap_or_else(|| panic!("no case `{name}` in losses.json; re-run gen_losses.py"))
}

impl Case {
    fn array(&self, key: &str) -> &Array {
        self.inputs.get(key).unwrap_or_else(|| panic!("case has no input `{key}`"))
    }
    fn grad(&self, key: &str) -> &[f64] {
        &self.grads.get(key).unwrap_or_else(|| panic!("case has no gradient `{key}`")).data
    }
    fn f64(&self, key: &str) -> f64 {
        self.settings[key]
            .as_f64()
            .unwrap_or_else(|| panic!("setting `{key}` is not a number"))
    }
    fn targets(&self) -> Vec<usize> {
        serde_json::from_value(self.settings["targets"].clone()).expect("targets are class indices")
    }
    fn tensor<S: Shape, E: Dtype>(&self, key: &str, shape: S) -> Tensor<S, E, Cpu> {
        let array = self.array(key);
        assert_eq!(shape.concrete().into_iter().collect::<Vec<_>>(), array.shape, "shape of `{key}`");
        let data = array.data.iter().map(|&v| E::from_f64(v).expect("f64 fits")).collect();
        Cpu::default().tensor_from_vec(data, shape)
    }
    fn dims<const N: usize>(&self, key: &str) -> [usize; N] {
        self.array(key)
            .shape
            .clone()
            .try_into()
            .unwrap_or_else(|_| panic!("`{key}` is not rank {N}"))
    }
    fn t2<E: Dtype>(&self, key: &str) -> Tensor<(usize, usize), E, Cpu> {
        let [a, b] = self.dims(key);
        self.tensor(key, (a, b))
    }
    fn t4<E: Dtype>(&self, key: &str) -> Tensor<(usize, usize, usize, usize), E, Cpu> {
        let [a, b, c, d] = self.dims(key);
        self.tensor(key, (a, b, c, d))
    }
}

/// Asserts the loss value and the gradient of every named student input against the case.
fn assert_matches<E: TestFloat>(c: &Case, value: f64, grads: &[(&str, Tensor<impl Shape, E, Cpu>)], tol: Tolerance)
where
    Cpu: Device<E>,
{
    assert_close!(value, c.value, tol);
    for (key, grad) in grads {
        kd_core::testing::assert_close_impl(grad, &c.grad(key), tol, key);
    }
}

/// The dtypes the checks run in (f32 and f64).
trait TestFloat: Dtype + num_traits::Float + rand_distr::uniform::SampleUniform {}
impl TestFloat for f32 {}
impl TestFloat for f64 {}

/// Runs a generic check in f64 and f32.
macro_rules! in_f64_and_f32 {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn f64() {
                super::$name::<f64>(kd_core::testing::Tolerance::rel_abs(1e-10, 1e-12));
            }
            #[test]
            fn f32() {
                super::$name::<f32>(kd_core::testing::Tolerance::F32);
            }
        }
    )*};
}

fn check_kd_case<E: TestFloat>(name: &str, tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case(name);
    let student = c.t2::<E>("student_logits");
    let loss = kd_loss(student.leaky_trace(), c.t2("teacher_logits"), c.f64("temperature")).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_logits", loss.backward().get(&student))], tol);
}

fn kd_t1<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_kd_case::<E>("kd_T1", tol);
}
fn kd_t4<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_kd_case::<E>("kd_T4", tol);
}
fn kd_t20<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_kd_case::<E>("kd_T20", tol);
}
fn kd_extreme_t1<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_kd_case::<E>("kd_extreme_T1", tol);
}
fn kd_extreme_t20<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_kd_case::<E>("kd_extreme_T20", tol);
}

fn cross_entropy<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("ce");
    let student = c.t2::<E>("student_logits");
    let loss = cross_entropy_loss(student.leaky_trace(), &c.targets()).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_logits", loss.backward().get(&student))], tol);
}

fn kd_with_ce<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("kd_with_ce");
    let student = c.t2::<E>("student_logits");
    let config = KdConfig::default();
    assert_eq!(
        (config.temperature, config.ce_weight, config.kd_weight),
        (c.f64("temperature"), c.f64("ce_weight"), c.f64("kd_weight"))
    );
    let loss = kd_with_ce_loss(student.leaky_trace(), c.t2("teacher_logits"), &c.targets(), &config).expect("valid loss inputs");
    let value = loss.value();
    assert_matches(c, value, &[("student_logits", loss.into_total().backward().get(&student))], tol);
}

fn hint<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("hint");
    let student = c.t4::<E>("student_feat");
    let loss = hint_loss(student.leaky_trace(), c.t4("teacher_feat")).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_feat", loss.backward().get(&student))], tol);
}

fn conv1x1_adapter<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("conv1x1");
    let [b, _, h, w] = c.dims::<4>("input");
    let input: Tensor<(usize, Const<3>, usize, usize), E, _> = c.tensor("input", (b, Const, h, w));
    let mut adapter = Cpu::default().build_module::<Conv1x1Adapter<3, 6>, E>();
    adapter.weight = c.tensor::<_, E>("weight", (Const::<6>, Const::<3>)).reshape();
    adapter.bias = c.tensor("bias", (Const,));
    let probe: Tensor<(usize, Const<6>, usize, usize), E, _> = c.tensor("probe", (b, Const, h, w));
    type Maps<E, const C: usize> = Tensor<(usize, Const<C>, usize, usize), E, Cpu, OwnedTape<E, Cpu>>;
    let output: Maps<E, 6> = adapter.forward(input.leaky_trace());
    assert_close!(
        output.retaped::<NoneTape>(),
        c.output.as_ref().expect("conv1x1 has an output").data,
        tol
    );
    let objective = (output * probe).sum();
    assert_close!(value_of(&objective), c.value, tol);
    let grads = objective.backward();
    assert_close!(grads.get(&input), c.grad("input"), tol);
    assert_close!(grads.get(&adapter.weight), c.grad("weight"), tol);
    assert_close!(grads.get(&adapter.bias), c.grad("bias"), tol);
}

fn check_nst_case<E: TestFloat>(name: &str, kernel: NstKernel, tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case(name);
    let student = c.t4::<E>("student_feat");
    let loss = nst_loss(student.leaky_trace(), c.t4("teacher_feat"), kernel).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_feat", loss.backward().get(&student))], tol);
}
fn nst_poly<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_nst_case::<E>("nst_poly", NstKernel::default(), tol);
}
fn nst_linear<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_nst_case::<E>("nst_linear", NstKernel::Linear, tol);
}
fn nst_gaussian<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_nst_case::<E>("nst_gaussian", NstKernel::Gaussian { sigma: 1.0 }, tol);
}

fn check_at_case<E: TestFloat>(name: &str, convention: AtConvention, tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case(name);
    let student = c.t4::<E>("student_feat");
    let loss = at_loss(student.leaky_trace(), c.t4("teacher_feat"), c.f64("p"), convention).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_feat", loss.backward().get(&student))], tol);
}
fn at_authors_code_p2<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_at_case::<E>("at_code_p2.0", AtConvention::AuthorsCode, tol);
}
fn at_authors_code_p1_5<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_at_case::<E>("at_code_p1.5", AtConvention::AuthorsCode, tol);
}
fn at_paper<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_at_case::<E>("at_paper", AtConvention::Paper, tol);
}

fn activation_boundary<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("ab");
    let student = c.t4::<E>("student_feat");
    let loss = ab_loss(student.leaky_trace(), c.t4("teacher_feat"), c.f64("margin")).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_feat", loss.backward().get(&student))], tol);
}

fn check_fsp_case<E: TestFloat>(name: &str, convention: FspConvention, tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case(name);
    let (first, second) = (c.t4::<E>("student_first"), c.t4::<E>("student_second"));
    let teacher = fsp_matrix(c.t4::<E>("teacher_first"), c.t4::<E>("teacher_second")).expect("valid loss inputs");
    let student = fsp_matrix(first.leaky_trace(), second.retaped::<OwnedTape<E, Cpu>>()).expect("valid loss inputs");
    let loss = fsp_loss(student, teacher, convention).expect("valid loss inputs");
    assert_close!(value_of(&loss), c.value, tol);
    let grads = loss.backward();
    assert_close!(grads.get(&first), c.grad("student_first"), tol);
    assert_close!(grads.get(&second), c.grad("student_second"), tol);
}
fn fsp_paper<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_fsp_case::<E>("fsp_paper", FspConvention::Paper, tol);
}
fn fsp_repdistiller<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    check_fsp_case::<E>("fsp_repdistiller", FspConvention::RepDistiller, tol);
}

fn rkd_distance<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("rkd_distance");
    let student = c.t2::<E>("student_embed");
    let loss = rkd_distance_loss(student.leaky_trace(), c.t2::<E>("teacher_embed")).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_embed", loss.backward().get(&student))], tol);
}

fn rkd_angle<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("rkd_angle");
    let student = c.t2::<E>("student_embed");
    let loss = rkd_angle_loss(student.leaky_trace(), c.t2::<E>("teacher_embed")).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_embed", loss.backward().get(&student))], tol);
}

fn similarity_preserving<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("sp");
    let student = c.t4::<E>("student_feat");
    let loss = sp_loss(student.leaky_trace(), c.t4::<E>("teacher_feat")).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_feat", loss.backward().get(&student))], tol);
}

fn deep_mutual_learning<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("dml");
    let student = c.t2::<E>("student_logits");
    let loss = dml_loss(student.leaky_trace(), &[c.t2("peer0"), c.t2("peer1")], &c.targets()).expect("valid loss inputs");
    let value = loss.value();
    assert_matches(c, value, &[("student_logits", loss.into_total().backward().get(&student))], tol);
}

fn be_your_own_teacher<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("byot");
    let config = ByotConfig {
        alpha: c.f64("alpha"),
        temperature: c.f64("temperature"),
        feature_weight: c.f64("feature_weight"),
    };
    let (logits, feat) = (c.t2::<E>("student_logits"), c.t2::<E>("student_feat"));
    let loss = byot_loss(
        logits.leaky_trace(),
        c.t2("teacher_logits"),
        &c.targets(),
        feat.leaky_trace(),
        c.t2("teacher_feat"),
        &config,
    )
    .expect("valid loss inputs");
    assert_close!(loss.value(), c.value, tol);
    let grads = loss.into_total().backward();
    assert_close!(grads.get(&logits), c.grad("student_logits"), tol);
    assert_close!(grads.get(&feat), c.grad("student_feat"), tol);
}

fn decoupled_kd<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("dkd");
    let config = DkdConfig {
        alpha: c.f64("alpha"),
        beta: c.f64("beta"),
        temperature: c.f64("temperature"),
    };
    let student = c.t2::<E>("student_logits");
    let loss = dkd_loss(student.leaky_trace(), c.t2("teacher_logits"), &c.targets(), &config).expect("valid loss inputs");
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_logits", loss.backward().get(&student))], tol);
}

type Mlp<E> = (
    dfdx::nn::modules::Linear<4, 6, E, Cpu>,
    dfdx::nn::modules::Tanh,
    dfdx::nn::modules::Linear<6, 3, E, Cpu>,
);

fn mlp_from<E: TestFloat>(c: &Case, prefix: &str) -> Mlp<E>
where
    Cpu: Device<E>,
{
    let mut mlp = Cpu::default().build_module::<(builders::Linear<4, 6>, builders::Tanh, builders::Linear<6, 3>), E>();
    mlp.0.weight = c.tensor(&format!("{prefix}_w1"), (Const, Const));
    mlp.0.bias = c.tensor(&format!("{prefix}_b1"), (Const,));
    mlp.2.weight = c.tensor(&format!("{prefix}_w2"), (Const, Const));
    mlp.2.bias = c.tensor(&format!("{prefix}_b2"), (Const,));
    mlp
}

/// Against PyTorch's exact double backward; the finite-difference HVP is accurate to O(h²) in
/// f64 but only to about 1e-3 in f32, so the f32 gradient tolerance is looser (documented in
/// `gradient_attention`).
fn gradient_attention<E: TestFloat>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let c = case("gradient_at");
    let (student, teacher) = (mlp_from::<E>(c, "student"), mlp_from::<E>(c, "teacher"));
    let [b, d] = c.dims::<2>("input");
    let input: Tensor<(usize, Const<4>), E, _> = c.tensor("input", (b, Const));
    let targets = c.targets();
    let teacher_grad = input_gradient(&teacher, input.clone(), &targets).expect("valid loss inputs");
    assert_eq!(d, 4);
    assert_close!(teacher_grad, c.array("teacher_input_grad").data, tol);
    assert_close!(
        input_gradient(&student, input.clone(), &targets).expect("valid loss inputs"),
        c.array("student_input_grad").data,
        tol
    );

    let is_f64 = std::mem::size_of::<E>() == 8;
    let (fd_step, grad_tol) = if is_f64 {
        (1e-5, Tolerance::rel_abs(1e-6, 1e-9))
    } else {
        (1e-2, Tolerance::rel_abs(2e-2, 2e-4))
    };
    let grads = student.alloc_grads();
    let loss = gradient_at_loss(&student, input.traced(grads), &targets, teacher_grad, fd_step).expect("valid loss inputs");
    assert_close!(value_of(&loss), c.value, tol);
    let grads = loss.backward();
    assert_close!(grads.get(&student.0.weight), c.grad("student_w1"), grad_tol);
    assert_close!(grads.get(&student.0.bias), c.grad("student_b1"), grad_tol);
    assert_close!(grads.get(&student.2.weight), c.grad("student_w2"), grad_tol);
    assert_close!(grads.get(&student.2.bias), c.grad("student_b2"), grad_tol);
}

/// A logit divergence `(student, teacher, case) -> loss`, checked against case `name`.
fn check_divergence_case<E: TestFloat, L>(name: &str, tol: Tolerance, loss: L)
where
    Cpu: Device<E>,
    L: Fn(
        Tensor<(usize, usize), E, Cpu, OwnedTape<E, Cpu>>,
        Tensor<(usize, usize), E, Cpu>,
        &Case,
    ) -> Tensor<Rank0, E, Cpu, OwnedTape<E, Cpu>>,
{
    let c = case(name);
    let student = c.t2::<E>("student_logits");
    let loss = loss(student.leaky_trace(), c.t2("teacher_logits"), c);
    let value = value_of(&loss);
    assert_matches(c, value, &[("student_logits", loss.backward().get(&student))], tol);
}

macro_rules! divergence_cases {
    ($($name:ident => $case:literal, |$s:ident, $t:ident, $c:ident| $body:expr;)*) => {$(
        fn $name<E: TestFloat>(tol: Tolerance)
        where
            Cpu: Device<E>,
        {
            check_divergence_case::<E, _>($case, tol, |$s, $t, $c| $body);
        }
    )*};
}

divergence_cases! {
    reverse_kl_t1 => "reverse_kl_T1", |s, t, c| reverse_kl_loss(s, t, c.f64("temperature")).expect("valid loss inputs");
    reverse_kl_t4 => "reverse_kl_T4", |s, t, c| reverse_kl_loss(s, t, c.f64("temperature")).expect("valid loss inputs");
    tvd_t1 => "tvd_T1", |s, t, c| tvd_loss(s, t, c.f64("temperature")).expect("valid loss inputs");
    tvd_t4 => "tvd_T4", |s, t, c| tvd_loss(s, t, c.f64("temperature")).expect("valid loss inputs");
    jsd_beta_0_1 => "jsd_beta1", |s, t, c| jsd_loss(s, t, c.f64("temperature"), c.f64("beta")).expect("valid loss inputs");
    jsd_beta_0_5 => "jsd_beta5", |s, t, c| jsd_loss(s, t, c.f64("temperature"), c.f64("beta")).expect("valid loss inputs");
    jsd_beta_0_9 => "jsd_beta9", |s, t, c| jsd_loss(s, t, c.f64("temperature"), c.f64("beta")).expect("valid loss inputs");
    jsd_extreme => "jsd_extreme", |s, t, c| jsd_loss(s, t, c.f64("temperature"), c.f64("beta")).expect("valid loss inputs");
    dist => "dist", |s, t, c| dist_loss(s, t, &DistConfig { beta: c.f64("beta"), gamma: c.f64("gamma"), temperature: c.f64("temperature") }).expect("valid loss inputs");
    dist_weighted_t4 => "dist_weighted_T4", |s, t, c| dist_loss(s, t, &DistConfig { beta: c.f64("beta"), gamma: c.f64("gamma"), temperature: c.f64("temperature") }).expect("valid loss inputs");
}

in_f64_and_f32!(
    reverse_kl_t1,
    reverse_kl_t4,
    tvd_t1,
    tvd_t4,
    jsd_beta_0_1,
    jsd_beta_0_5,
    jsd_beta_0_9,
    jsd_extreme,
    dist,
    dist_weighted_t4,
    kd_t1,
    kd_t4,
    kd_t20,
    kd_extreme_t1,
    kd_extreme_t20,
    cross_entropy,
    kd_with_ce,
    hint,
    conv1x1_adapter,
    nst_poly,
    nst_linear,
    nst_gaussian,
    at_authors_code_p2,
    at_authors_code_p1_5,
    at_paper,
    activation_boundary,
    fsp_paper,
    fsp_repdistiller,
    rkd_distance,
    rkd_angle,
    similarity_preserving,
    deep_mutual_learning,
    be_your_own_teacher,
    decoupled_kd,
    gradient_attention,
);
