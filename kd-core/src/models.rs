//! Reference architectures, as dfdx builder types.

use dfdx::nn::builders::{Linear, ReLU};

use crate::nn::builders::{Conv2D, Flatten2D, MaxPool2D};

/// LeNet-5 (LeCun et al., *Gradient-Based Learning Applied to Document Recognition*, 1998) in
/// its common modern form: ReLU and max-pooling, 28×28 input padded to keep the first map at
/// 28×28. Input `(B, 1, 28, 28)`, output `(B, 10)` logits. 61,706 parameters.
pub type LeNet5 = (
    (Conv2D<1, 6, 5, 1, 2>, ReLU, MaxPool2D<2, 2>),
    (Conv2D<6, 16, 5>, ReLU, MaxPool2D<2, 2>),
    Flatten2D<400>,
    (Linear<400, 120>, ReLU, Linear<120, 84>, ReLU, Linear<84, 10>),
);

/// A three-stage CNN with a classifier after every stage, for Be Your Own Teacher and deep
/// supervision ([`crate::regime::deep_supervision`]) on `(B, 1, 28, 28)` images.
///
/// Stages: 16 maps at 14×14, 32 at 7×7, then 64 channels pooled to the 64-wide deepest feature.
/// Each shallow stage reaches the deepest stage's resolution and width through a bottleneck of
/// 3×3 convolutions, as the paper's bottleneck blocks do (stage 1: a stride-2 convolution to
/// 32 maps at 7×7, then one to 64; stage 2: one to 64 at 7×7), then the same global average
/// pool, so its L2 term compares like with like and a shallow head sees spatial structure, not
/// a channel average of its stage. Every feature has its own `Linear<64, 10>` head.
pub mod byot_cnn {
    use dfdx::nn::{BuildOnDevice, Module, ModuleMut, ModuleVisitor, TensorCollection};
    use dfdx::prelude::*;

    use super::{Conv2D, Flatten2D, Linear, MaxPool2D, ReLU};
    use crate::loss::byot::Head;
    use crate::nn::builders::AdaptiveAvgPool2D;
    use crate::tap::tap;

    type Stages = (
        (Conv2D<1, 16, 3, 1, 1>, ReLU, MaxPool2D<2, 2>),
        (Conv2D<16, 32, 3, 1, 1>, ReLU, MaxPool2D<2, 2>),
        (Conv2D<32, 64, 3, 1, 1>, ReLU, AdaptiveAvgPool2D<1, 1>, Flatten2D<64>),
    );
    type Bottlenecks = (
        (
            Conv2D<16, 32, 3, 2, 1>,
            ReLU,
            Conv2D<32, 64, 3, 1, 1>,
            ReLU,
            AdaptiveAvgPool2D<1, 1>,
            Flatten2D<64>,
        ),
        (Conv2D<32, 64, 3, 1, 1>, ReLU, AdaptiveAvgPool2D<1, 1>, Flatten2D<64>),
    );
    type Heads = (Linear<64, 10>, Linear<64, 10>, Linear<64, 10>);

    /// One image batch.
    pub type Input<T = NoneTape> = Tensor<(usize, Const<1>, usize, usize), f32, Cpu, T>;
    /// The feature every head's L2 term compares.
    pub type Feature = (usize, Const<64>);
    type Taped = OwnedTape<f32, Cpu>;

    /// The network's parts (generic so that dfdx can convert it between devices and dtypes).
    #[derive(Debug, Clone)]
    pub struct Parts<S, B, H> {
        /// The three stages.
        pub stages: S,
        /// The shallow heads' bottlenecks.
        pub bottlenecks: B,
        /// The classifiers: after stage 1, stage 2, and the deepest.
        pub heads: H,
    }

    /// The built network, in f32 on the CPU.
    pub type ByotCnn = Parts<
        <Stages as BuildOnDevice<Cpu, f32>>::Built,
        <Bottlenecks as BuildOnDevice<Cpu, f32>>::Built,
        <Heads as BuildOnDevice<Cpu, f32>>::Built,
    >;

    impl ByotCnn {
        /// A freshly initialised network.
        pub fn build(device: &Cpu) -> Self {
            Parts {
                stages: device.build_module::<Stages, f32>(),
                bottlenecks: device.build_module::<Bottlenecks, f32>(),
                heads: device.build_module::<Heads, f32>(),
            }
        }

        /// Every head's logits and feature for training, shallowest first. The features are taps:
        /// their tapes are the logits', so a loss may use or ignore them.
        pub fn forward_heads(&mut self, input: Input<Taped>) -> Vec<Head<10, Feature>> {
            let (stage1_value, stage1) = tap(self.stages.0.forward_mut(input));
            let (stage2_value, stage2) = tap(self.stages.1.forward_mut(stage1));
            let deepest = self.stages.2.forward_mut(stage2);
            let shallow = [
                self.bottlenecks.0.forward_mut(stage1_value.retaped::<Taped>()),
                self.bottlenecks.1.forward_mut(stage2_value.retaped::<Taped>()),
            ];
            let mut heads = Vec::with_capacity(3);
            for (feature, classifier) in shallow.into_iter().zip([&mut self.heads.0, &mut self.heads.1]) {
                let (value, feature) = tap(feature);
                heads.push(Head {
                    logits: classifier.forward_mut(feature),
                    feature: value.retaped::<Taped>(),
                });
            }
            let (value, deepest) = tap(deepest);
            heads.push(Head {
                logits: self.heads.2.forward_mut(deepest),
                feature: value.retaped::<Taped>(),
            });
            heads
        }

        /// The deepest head's logits alone, for training the plain network (no shallow head).
        pub fn forward_deepest(&mut self, input: Input<Taped>) -> Tensor<(usize, Const<10>), f32, Cpu, Taped> {
            let stage1 = self.stages.0.forward_mut(input);
            let stage2 = self.stages.1.forward_mut(stage1);
            self.heads.2.forward_mut(self.stages.2.forward_mut(stage2))
        }

        /// Every head's logits for evaluation, shallowest first.
        pub fn predict(&self, input: Input) -> [Tensor<(usize, Const<10>), f32, Cpu>; 3] {
            let stage1 = self.stages.0.forward(input);
            let stage2 = self.stages.1.forward(stage1.clone());
            let deepest = self.stages.2.forward(stage2.clone());
            [
                self.heads.0.forward(self.bottlenecks.0.forward(stage1)),
                self.heads.1.forward(self.bottlenecks.1.forward(stage2)),
                self.heads.2.forward(deepest),
            ]
        }
    }

    impl<S: TensorCollection<E, D>, B: TensorCollection<E, D>, H: TensorCollection<E, D>, E: Dtype, D: Device<E>> TensorCollection<E, D>
        for Parts<S, B, H>
    {
        type To<E2: Dtype, D2: Device<E2>> = Parts<S::To<E2, D2>, B::To<E2, D2>, H::To<E2, D2>>;

        fn iter_tensors<V: ModuleVisitor<Self, E, D>>(visitor: &mut V) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
            visitor.visit_fields(
                (
                    Self::module("stages", |s| &s.stages, |s| &mut s.stages),
                    Self::module("bottlenecks", |s| &s.bottlenecks, |s| &mut s.bottlenecks),
                    Self::module("heads", |s| &s.heads, |s| &mut s.heads),
                ),
                |(stages, bottlenecks, heads)| Parts {
                    stages,
                    bottlenecks,
                    heads,
                },
            )
        }
    }
}

/// Denoising generators and a discriminator on 28×28 images in `[0, 1]`, for generative
/// distillation ([`crate::regime::generative`]): encoder–decoder generators (two stride-2
/// convolutions, two stride-2 transposed convolutions, a linear output: a sigmoid saturates at
/// the black background and stalls L1 training), the teacher 32 and the student 8 channels wide,
/// with typed taps of every layer (`#[model]`).
pub mod gan {
    use dfdx::nn::builders::ReLU;

    use super::{Flatten2D, Linear};
    use crate::model;
    use crate::nn::builders::{Conv2D, ConvTrans2D};

    /// The teacher generator: 32 → 64 channels down, back up to one.
    #[model]
    pub struct TeacherGenerator {
        /// 32 × 14 × 14.
        pub enc1: Conv2D<1, 32, 4, 2, 1>,
        relu1: ReLU,
        /// 64 × 7 × 7 (distilled).
        pub enc2: Conv2D<32, 64, 4, 2, 1>,
        relu2: ReLU,
        /// 32 × 14 × 14 (distilled).
        pub dec1: ConvTrans2D<64, 32, 4, 2, 1>,
        relu3: ReLU,
        dec2: ConvTrans2D<32, 1, 4, 2, 1>,
    }

    /// The student generator: the same layers with a quarter of the channels (1/16 of the
    /// multiply-adds of the middle layers).
    #[model]
    pub struct StudentGenerator {
        /// 8 × 14 × 14.
        pub enc1: Conv2D<1, 8, 4, 2, 1>,
        relu1: ReLU,
        /// 16 × 7 × 7.
        pub enc2: Conv2D<8, 16, 4, 2, 1>,
        relu2: ReLU,
        /// 8 × 14 × 14.
        pub dec1: ConvTrans2D<16, 8, 4, 2, 1>,
        relu3: ReLU,
        dec2: ConvTrans2D<8, 1, 4, 2, 1>,
    }

    /// The conditional (pix2pix) discriminator: the noisy input and a clean or restored image as
    /// two channels, one logit per pair, so it judges a restoration of *this* input.
    #[model]
    pub struct Discriminator {
        conv1: Conv2D<2, 16, 4, 2, 1>,
        relu1: ReLU,
        conv2: Conv2D<16, 32, 4, 2, 1>,
        relu2: ReLU,
        flat: Flatten2D<1568>,
        head: Linear<1568, 1>,
    }

    /// The student's 1×1 adapters to the teacher's `enc2` (16 → 64) and `dec1` (8 → 32) maps.
    pub type Adapters = (crate::loss::Conv1x1Adapter<16, 64>, crate::loss::Conv1x1Adapter<8, 32>);

    /// Multiply-adds per image of a generator of width `c`: each convolution costs
    /// `C_out · C_in · K² · H_out · W_out`, each transposed one `C_in · C_out · K² · H_in · W_in`.
    pub const fn generator_macs(c: usize) -> usize {
        c * 16 * 14 * 14 + 2 * c * c * 16 * 7 * 7 + 2 * c * c * 16 * 7 * 7 + c * 16 * 14 * 14
    }

    /// Multiply-adds per image of the teacher and the student.
    pub const MACS: (usize, usize) = (generator_macs(32), generator_macs(8));
}
