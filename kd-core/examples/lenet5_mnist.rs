//! LeNet-5 on real MNIST, built only from kd-core's convolution and pooling modules: the proof
//! that the spatial ops train.
//!
//! ```sh
//! cargo run --release -p kd-core --example lenet5_mnist            # 6 epochs, full data
//! cargo run --release -p kd-core --example lenet5_mnist -- 1 5000  # 1 epoch on 5,000 images
//! ```
//!
//! The architecture is [`kd_core::models::LeNet5`].

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use kd_core::data::mnist::{self, Split};
use kd_core::metrics::{argmax_rows, correct};
use kd_core::models::LeNet5;

type Images = Tensor<(usize, Const<1>, usize, usize), f32, Cpu>;

fn images(dev: &Cpu, split: &Split, indices: &[usize]) -> (Images, Vec<usize>) {
    let (pixels, labels) = split.batch(indices);
    (
        dev.tensor_from_vec(pixels, (indices.len(), Const, split.height, split.width)),
        labels,
    )
}

fn accuracy<M: Module<Images, Output = Tensor<(usize, Const<10>), f32, Cpu>>>(model: &M, dev: &Cpu, split: &Split) -> f64 {
    let mut right = 0;
    for start in (0..split.len()).step_by(1000) {
        let indices: Vec<usize> = (start..(start + 1000).min(split.len())).collect();
        let (x, labels) = images(dev, split, &indices);
        right += correct(&argmax_rows(&model.forward(x).as_vec(), 10), &labels);
    }
    right as f64 / split.len() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The main thread trains; make it one of rayon's workers rather than a third thread on two cores.
    kd_core::train::use_calling_thread()?;
    let mut args = std::env::args().skip(1);
    let epochs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(6);
    let train_size: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(60_000);

    let data = mnist::load_or_fetch()?;
    let train = data.train.take(train_size);
    let dev = Cpu::seed_from_u64(0);
    let mut model = dev.build_module::<LeNet5, f32>();
    let mut grads = model.alloc_grads();
    let mut opt = Adam::new(&model, AdamConfig::default());
    let batch = 64;
    let started = Instant::now();

    println!(
        "LeNet-5 on MNIST: {} training images, {} epochs, batch {batch}",
        train.len(),
        epochs
    );
    for epoch in 1..=epochs {
        // Adam at 1e-3, decayed by 0.7 per epoch.
        opt.cfg.lr = 1e-3 * 0.7f64.powi(epoch as i32 - 1);
        // A deterministic per-epoch permutation (multiplicative hashing of the index).
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.sort_by_key(|&i| (i as u64 ^ epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7);
        let mut loss_sum = 0.0;
        for indices in order.chunks(batch) {
            let (x, y) = images(&dev, &train, indices);
            let loss = kd_core::loss::cross_entropy_loss(model.forward_mut(x.traced(grads)), &y)?;
            loss_sum += kd_core::ops::value_of(&loss) * indices.len() as f64;
            grads = loss.backward();
            opt.update(&mut model, &grads)?;
            model.zero_grads(&mut grads);
        }
        let test_accuracy = accuracy(&model, &dev, &data.test);
        println!(
            "epoch {epoch}: train loss {:.4}, test accuracy {:.2} %, {:.0} s",
            loss_sum / train.len() as f64,
            100.0 * test_accuracy,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
