//! The spatial ops against PyTorch: outputs and the gradients of `sum(output · probe)` with
//! respect to every input, from `tests/reference/gen_spatial.py` (torch, float64) and its
//! committed output `tests/reference/spatial.json`. Each check runs in f64 and f32.

use std::collections::HashMap;
use std::sync::OnceLock;

use dfdx::prelude::*;
use kd_core::spatial::{conv2d, Conv2dGeometry};
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
    groups: usize,
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
struct Fixture {
    conv2d: HashMap<String, ConvCase>,
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
        let g = &c.geometry;
        let geometry = Conv2dGeometry::square(g.kernel).with_stride(g.stride).with_padding(g.padding).with_dilation(g.dilation).with_groups(g.groups);
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

#[test]
fn conv2d_f64() {
    check_conv2d::<f64>(Tolerance::rel_abs(1e-10, 1e-12));
}

#[test]
fn conv2d_f32() {
    check_conv2d::<f32>(Tolerance::rel_abs(1e-5, 1e-5));
}
