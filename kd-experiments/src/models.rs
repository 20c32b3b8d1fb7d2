//! Every model the experiments train, in one place: Hinton et al.'s MNIST MLPs, the CNN pair
//! of the method comparison with one `#[distill]` student per method, the Born-Again CNN, the
//! second teacher and the students of the two-teacher experiment, and the character language
//! models. The BYOT CNN, the GAN generators and LeNet-5 are kd-core's
//! reference architectures ([`kd_core::models`]).

use dfdx::prelude::*;
use kd_core::data::fortunes::VOCAB;
use kd_core::nn::builders::{Conv2D, Flatten2D, Linear, MaxPool2D};
use kd_core::nn::transformer::Transformer;
use kd_core::{distill, model};

// Hinton, Vinyals & Dean (2015), §3.

/// The teacher: 784-1200-1200-10, dropout 0.2 on the input and 0.5 on the hidden layers.
#[model]
pub struct HintonTeacher {
    drop_in: DropoutOneIn<5>,
    fc1: Linear<784, 1200>,
    relu1: ReLU,
    drop1: DropoutOneIn<2>,
    fc2: Linear<1200, 1200>,
    relu2: ReLU,
    drop2: DropoutOneIn<2>,
    head: Linear<1200, 10>,
}

/// The student trained on the labels alone: 784-800-800-10, no regularisation.
#[model]
pub struct HintonStudentAlone {
    fc1: Linear<784, 800>,
    relu1: ReLU,
    fc2: Linear<800, 800>,
    relu2: ReLU,
    head: Linear<800, 10>,
}

/// The same student, distilled from the teacher's logits at T = 20.
#[distill(teacher = HintonTeacher, input = [784], temp = 20.0, ce_weight = 0.1, kd_weight = 0.9)]
pub struct HintonStudent {
    fc1: Linear<784, 800>,
    relu1: ReLU,
    fc2: Linear<800, 800>,
    relu2: ReLU,
    head: Linear<800, 10>,
}

// The CNN pair of the method comparison.

/// The teacher: two convolutions per stage.
#[model]
pub struct CnnTeacher {
    conv1a: Conv2D<1, 16, 3, 1, 1>,
    relu1a: ReLU,
    conv1: Conv2D<16, 16, 3, 1, 1>,
    relu1: ReLU,
    pool1: MaxPool2D<2, 2>,
    conv2a: Conv2D<16, 32, 3, 1, 1>,
    relu2a: ReLU,
    conv2: Conv2D<32, 32, 3, 1, 1>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<1568>,
    fc: Linear<1568, 128>,
    relu3: ReLU,
    head: Linear<128, 10>,
}

/// The student's layers, one convolution per stage, with the given attributes on the layers
/// that can be paired: `conv1`, `conv2` and the penultimate `fc`.
macro_rules! cnn_student {
    ($(#[$doc:meta])* $attribute:ident($($args:tt)*) $name:ident { conv1: [$($conv1:tt)*], conv2: [$($conv2:tt)*], fc: [$($fc:tt)*] }) => {
        $(#[$doc])*
        #[$attribute($($args)*)]
        pub struct $name {
            $($conv1)*
            conv1: Conv2D<1, 16, 3, 1, 1>,
            relu1: ReLU,
            pool1: MaxPool2D<2, 2>,
            $($conv2)*
            conv2: Conv2D<16, 32, 3, 1, 1>,
            relu2: ReLU,
            pool2: MaxPool2D<2, 2>,
            flat: Flatten2D<1568>,
            $($fc)*
            fc: Linear<1568, 64>,
            relu3: ReLU,
            head: Linear<64, 10>,
        }
    };
}

cnn_student!(
    /// The student on the labels alone, the baseline every method is compared with.
    model() CnnStudentAlone { conv1: [], conv2: [], fc: [] }
);
cnn_student!(
    /// Hinton et al.: logits at T = 4.
    distill(teacher = CnnTeacher, input = [1, 28, 28], temp = 4.0) KdStudent { conv1: [], conv2: [], fc: [] }
);
cnn_student!(
    /// FitNet hints through 1×1 adapters.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(features)) FitnetStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Neuron selectivity transfer (polynomial kernel).
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(features(nst))) NstStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Activation-based attention transfer.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(attention)) AtStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Activation boundaries through connectors.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(sparsity)) AbStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// FSP matrices between conv1 and conv2.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(relations)) FspStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);
cnn_student!(
    /// Relational KD: distances and angles between the samples' embeddings (`fc`).
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(relations(rkd))) RkdStudent { conv1: [], conv2: [], fc: [#[distill(pair)]] }
);
cnn_student!(
    /// Similarity-preserving KD on the last convolution's maps.
    distill(teacher = CnnTeacher, input = [1, 28, 28], ce_weight = 1.0, kd_weight = 0.0, match(relations(sp))) SpStudent { conv1: [], conv2: [#[distill(pair)]], fc: [] }
);

cnn_student!(
    /// FitNet hints and attention transfer together (the `kd bench` CNN workload).
    distill(teacher = CnnTeacher, input = [1, 28, 28], temp = 4.0, match(features, attention)) FitnetAtStudent { conv1: [#[distill(pair)]], conv2: [#[distill(pair)]], fc: [] }
);

cnn_student!(
    /// Born-again generations: the student architecture taught by its previous generation, with
    /// the paper's BAN objective, the teacher's distribution as the only target (KD_Lib's `BANN`
    /// instead mixes the labels in at T = 20). T = 4 was chosen on the validation split over
    /// the paper's T = 1 (`results/born_again_validation.json`).
    distill(teacher = Self, input = [1, 28, 28], temp = 4.0, ce_weight = 0.0, kd_weight = 1.0) BornAgainCnn { conv1: [], conv2: [], fc: [] }
);

// The second teacher of the two-teacher experiment, and its students.

/// A teacher unlike [`CnnTeacher`]: one wide 5×5 convolution per stage and a wider classifier.
#[model]
pub struct WideCnnTeacher {
    conv1: Conv2D<1, 32, 5, 1, 2>,
    relu1: ReLU,
    pool1: MaxPool2D<2, 2>,
    conv2: Conv2D<32, 48, 5, 1, 2>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<2352>,
    fc: Linear<2352, 256>,
    relu3: ReLU,
    head: Linear<256, 10>,
}

cnn_student!(
    /// Hinton et al. from the wide teacher alone: logits at T = 4.
    distill(teacher = WideCnnTeacher, input = [1, 28, 28], temp = 4.0) KdFromWideStudent { conv1: [], conv2: [], fc: [] }
);
cnn_student!(
    /// Both teachers: the soft term against their averaged probabilities at T = 4.
    distill(teachers(deep = CnnTeacher, wide = WideCnnTeacher), input = [1, 28, 28], temp = 4.0) AveragedTeachersStudent { conv1: [], conv2: [], fc: [] }
);

// Character language models on Debian's fortunes.

/// Characters of context of the language models.
pub const CONTEXT: usize = 64;
/// The language teacher: 4 layers, 128 wide, 4 heads.
pub type LanguageTeacher = Transformer<VOCAB, 128, 4, 512, 4, CONTEXT>;
/// The DistilBERT-style student: the teacher's width, half its layers.
pub type WideStudent = Transformer<VOCAB, 128, 4, 512, 2, CONTEXT>;
/// The TinyBERT-style student (and the same student alone): half the width, half the layers.
pub type NarrowStudent = Transformer<VOCAB, 64, 4, 256, 2, CONTEXT>;
/// TinyBERT's projections of the narrow student's hidden states and embeddings to the teacher's
/// width.
pub type Projections = (Linear<64, 128>, Linear<64, 128>);
