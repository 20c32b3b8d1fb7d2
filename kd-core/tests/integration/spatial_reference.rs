//! The spatial ops against PyTorch: outputs and the gradients of `sum(output · probe)` with
//! respect to every input, from `tests/reference/gen_spatial.py` (torch, float64) and its
//! committed output `tests/reference/spatial.json`. Each check runs in f64 and f32.

use std::collections::HashMap;
use std::sync::OnceLock;

use dfdx::prelude::*;
use kd_core::spatial::{adaptive_avg_pool2d, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, Conv2dGeometry};
use kd_core::testing::{assert_close_impl, Tolerance};
use serde::Deserialize;

#[derive(Deserialize)]
struct Array {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Array {
    fn tensor<E: Dtype, S: Shape>(&self, shape: S) -> Tensor<S, E, Cpu> {
        assert_eq!(shape.concrete().into_iter().collect::<Vec<_>>(), self.shape);
        Cpu::default().tensor_from_vec(self.data.iter().map(|&v| E::from_f64(v).expect("f64 fits")).collect(), shape)
    }
    fn dims4(&self) -> (usize, usize, usize, usize) {
        match self.shape[..] {
            [a, b, c, d] => (a, b, c, d),
            _ => panic!("expected rank 4, got {:?}", self.shape),
        }
    }
}

#[derive(Deserialize)]
struct ConvGeometry {
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    #[serde(default = "one")]
    groups: usize,
    #[serde(default)]
    output_padding: usize,
}

fn one() -> usize {
    1
}

impl ConvGeometry {
    fn geometry(&self) -> Conv2dGeometry {
        Conv2dGeometry::square(self.kernel)
            .with_stride(self.stride)
            .with_padding(self.padding)
            .with_dilation(self.dilation)
            .with_groups(self.groups)
    }
}

#[derive(Deserialize)]
struct ConvCase {
    geometry: ConvGeometry,
    input: Array,
    weight: Array,
    bias: Array,
    probe: Array,
    output: Array,
    grad_input: Array,
    grad_weight: Array,
    grad_bias: Array,
}

#[derive(Deserialize)]
struct PoolResult {
    output: Array,
    probe: Array,
    grad_input: Array,
}

#[derive(Deserialize)]
struct PoolCase {
    geometry: ConvGeometry,
    input: Array,
    max: PoolResult,
    avg: Option<PoolResult>,
}

#[derive(Deserialize)]
struct AdaptiveCase {
    size: (usize, usize),
    input: Array,
    output: Array,
    probe: Array,
    grad_input: Array,
}

#[derive(Deserialize)]
struct Fixture {
    conv2d: HashMap<String, ConvCase>,
    conv_transpose2d: HashMap<String, ConvCase>,
    pool2d: HashMap<String, PoolCase>,
    adaptive_avg_pool2d: HashMap<String, AdaptiveCase>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/spatial.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
    })
}

fn check_conv2d<E: Dtype>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let cases = &fixture().conv2d;
    assert!(cases.len() >= 10, "the fixture covers the configurations");
    for (name, c) in cases {
        let geometry = c.geometry.geometry();
        let input = c.input.tensor::<E, _>(c.input.dims4());
        let weight = c.weight.tensor::<E, _>(c.weight.dims4());
        let bias = c.bias.tensor::<E, _>((c.bias.shape[0],));
        let probe = c.probe.tensor::<E, _>(c.probe.dims4());
        let output = conv2d(
            input.leaky_trace(),
            weight.retaped::<OwnedTape<E, Cpu>>(),
            Some(bias.retaped::<OwnedTape<E, Cpu>>()),
            geometry,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_close_impl(&output.retaped::<NoneTape>(), &c.output.data, tol, &format!("{name}: output"));
        let grads = (output * probe).sum().backward();
        assert_close_impl(&grads.get(&input), &c.grad_input.data, tol, &format!("{name}: grad input"));
        assert_close_impl(&grads.get(&weight), &c.grad_weight.data, tol, &format!("{name}: grad weight"));
        assert_close_impl(&grads.get(&bias), &c.grad_bias.data, tol, &format!("{name}: grad bias"));
    }
}

fn check_conv_transpose2d<E: Dtype>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let cases = &fixture().conv_transpose2d;
    assert!(cases.len() >= 5);
    for (name, c) in cases {
        let input = c.input.tensor::<E, _>(c.input.dims4());
        let weight = c.weight.tensor::<E, _>(c.weight.dims4());
        let bias = c.bias.tensor::<E, _>((c.bias.shape[0],));
        let probe = c.probe.tensor::<E, _>(c.probe.dims4());
        let extra = c.geometry.output_padding;
        let output = conv_transpose2d(
            input.leaky_trace(),
            weight.retaped::<OwnedTape<E, Cpu>>(),
            Some(bias.retaped::<OwnedTape<E, Cpu>>()),
            c.geometry.geometry(),
            (extra, extra),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(output.shape().concrete().to_vec(), c.output.shape, "{name}: output shape");
        assert_close_impl(&output.retaped::<NoneTape>(), &c.output.data, tol, &format!("{name}: output"));
        let grads = (output * probe).sum().backward();
        assert_close_impl(&grads.get(&input), &c.grad_input.data, tol, &format!("{name}: grad input"));
        assert_close_impl(&grads.get(&weight), &c.grad_weight.data, tol, &format!("{name}: grad weight"));
        assert_close_impl(&grads.get(&bias), &c.grad_bias.data, tol, &format!("{name}: grad bias"));
    }
}

fn check_pool<E: Dtype>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    let cases = &fixture().pool2d;
    assert!(cases.keys().any(|name| name.contains("ties")), "the fixture has max-pool ties");
    for (name, c) in cases {
        let input = c.input.tensor::<E, _>(c.input.dims4());
        let geometry = c.geometry.geometry();
        // Untaped, max pooling keeps no arg-max: the values must not change.
        let untaped = max_pool2d(input.clone(), geometry).unwrap_or_else(|e| panic!("{name} max untaped: {e}"));
        assert_close_impl(&untaped, &c.max.output.data, tol, &format!("{name} max: untaped output"));
        let mut results = vec![("max", max_pool2d(input.leaky_trace(), geometry), &c.max)];
        if let Some(avg) = &c.avg {
            results.push(("avg", avg_pool2d(input.leaky_trace(), geometry), avg));
        }
        for (kind, output, expected) in results {
            let output = output.unwrap_or_else(|e| panic!("{name} {kind}: {e}"));
            assert_eq!(
                output.shape().concrete().to_vec(),
                expected.output.shape,
                "{name} {kind}: output shape"
            );
            assert_close_impl(
                &output.retaped::<NoneTape>(),
                &expected.output.data,
                tol,
                &format!("{name} {kind}: output"),
            );
            let probe = expected.probe.tensor::<E, _>(expected.probe.dims4());
            let grads = (output * probe).sum().backward();
            assert_close_impl(
                &grads.get(&input),
                &expected.grad_input.data,
                tol,
                &format!("{name} {kind}: grad input"),
            );
        }
    }
}

fn check_adaptive<E: Dtype>(tol: Tolerance)
where
    Cpu: Device<E>,
{
    for (name, c) in &fixture().adaptive_avg_pool2d {
        let input = c.input.tensor::<E, _>(c.input.dims4());
        let output = adaptive_avg_pool2d(input.leaky_trace(), c.size);
        assert_close_impl(&output.retaped::<NoneTape>(), &c.output.data, tol, &format!("{name}: output"));
        let grads = (output * c.probe.tensor::<E, _>(c.probe.dims4())).sum().backward();
        assert_close_impl(&grads.get(&input), &c.grad_input.data, tol, &format!("{name}: grad input"));
    }
}

macro_rules! in_f64_and_f32 {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            use kd_core::testing::Tolerance;
            #[test]
            fn f64() {
                super::$check::<f64>(Tolerance::rel_abs(1e-10, 1e-12));
            }
            #[test]
            fn f32() {
                super::$check::<f32>(Tolerance::rel_abs(1e-5, 1e-5));
            }
        }
    )*};
}

in_f64_and_f32!(check_conv2d, check_conv_transpose2d, check_pool, check_adaptive);
