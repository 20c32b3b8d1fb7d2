//! `#[distill]` on small CNN pairs, with every kind of knowledge: the generated code trains a
//! student from a trained teacher, names every term, sends no gradient into the teacher and
//! trains the adapters.

use dfdx::optim::{Adam, AdamConfig};
use dfdx::prelude::*;
use kd_core::distill::{distill_step, Distill};
use kd_core::nn::builders::{Conv2D, Flatten2D, MaxPool2D};
use kd_core::{distill, model};

#[model]
struct Teacher {
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    pool1: MaxPool2D<2, 2>,
    conv2: Conv2D<8, 16, 3, 1, 1>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<64>,
    head: Linear<64, 3>,
}

#[distill(teacher = Teacher, temp = 4.0, input = [1, 8, 8], match(features, attention, sparsity, relations(samples)))]
struct Student {
    #[distill(pair)]
    conv1: Conv2D<1, 4, 3, 1, 1>,
    relu1: ReLU,
    pool1: MaxPool2D<2, 2>,
    #[distill(pair)]
    conv2: Conv2D<4, 8, 3, 1, 1>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<32>,
    head: Linear<32, 3>,
}

#[distill(teacher = Teacher, input = [1, 8, 8], match(features(nst, weight = 10.0), attention(gradient), attention(paper)))]
struct NstStudent {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    relu1: ReLU,
    pool1: MaxPool2D<2, 2>,
    #[distill(pair = conv2, weight = 2.0)]
    conv2: Conv2D<4, 8, 3, 1, 1>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<32>,
    head: Linear<32, 3>,
}

/// Born-again: the student is its own teacher's architecture, so FSP between its two paired
/// layers can be matched channel for channel.
#[distill(teacher = Self, input = [1, 8, 8], match(relations))]
struct BornAgain {
    #[distill(pair)]
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    #[distill(pair)]
    conv2: Conv2D<8, 8, 3, 1, 1>,
    relu2: ReLU,
    pool: MaxPool2D<4, 4>,
    flat: Flatten2D<32>,
    head: Linear<32, 3>,
}

/// Three paired layers with their own weights: each FSP term takes both of its pairs' weights.
#[distill(teacher = Self, input = [1, 8, 8], match(relations))]
struct WeightedFsp {
    #[distill(pair)]
    conv1: Conv2D<1, 8, 3, 1, 1>,
    relu1: ReLU,
    #[distill(pair, weight = 2.0)]
    conv2: Conv2D<8, 8, 3, 1, 1>,
    relu2: ReLU,
    #[distill(pair, weight = 3.0)]
    conv3: Conv2D<8, 8, 3, 1, 1>,
    relu3: ReLU,
    pool: MaxPool2D<4, 4>,
    flat: Flatten2D<32>,
    head: Linear<32, 3>,
}

type Images = Tensor<(usize, Const<1>, usize, usize), f32, Cpu>;

/// Class = which third of the image (top, middle, bottom rows) is brightest.
fn batch(dev: &Cpu, size: usize) -> (Images, Vec<usize>) {
    let x: Images = dev.sample_normal_like(&(size, Const, 8, 8));
    let pixels = x.as_vec();
    let labels = pixels
        .chunks(64)
        .map(|image| {
            let band = |rows: std::ops::Range<usize>| rows.flat_map(|r| image[r * 8..r * 8 + 8].iter()).sum::<f32>();
            let sums = [band(0..3), band(3..5), band(5..8)];
            (0..3).max_by(|&a, &b| sums[a].total_cmp(&sums[b])).unwrap_or(0)
        })
        .collect();
    (x, labels)
}

fn trained_teacher(dev: &Cpu) -> kd_core::distill::Built<Teacher> {
    let mut teacher = dev.build_module::<Teacher, f32>();
    let mut grads = teacher.alloc_grads();
    let mut opt = Adam::new(
        &teacher,
        AdamConfig {
            lr: 3e-3,
            ..Default::default()
        },
    );
    for _ in 0..200 {
        let (x, y) = batch(dev, 32);
        let loss = kd_core::loss::cross_entropy_loss(teacher.forward_mut(x.traced(grads)), &y).expect("valid loss inputs");
        grads = loss.backward();
        opt.update(&mut teacher, &grads).expect("update");
        teacher.zero_grads(&mut grads);
    }
    teacher
}

/// Runs `steps` generated distillation steps; returns the per-step terms.
fn distil<M>(dev: &Cpu, teacher: &M::TeacherModel, steps: usize) -> (M::Model, Vec<Vec<kd_core::loss::Term>>)
where
    M: Distill<Dtype = f32, Input = Images>,
    M::Model: dfdx::nn::TensorCollection<f32, Cpu> + dfdx::nn::ZeroGrads<f32, Cpu>,
{
    let mut distiller = M::build_distiller(dev);
    let mut grads = distiller.alloc_grads();
    let mut opt = Adam::new(
        &distiller,
        AdamConfig {
            lr: 3e-3,
            ..Default::default()
        },
    );
    let mut history = Vec::new();
    for step in 0..steps {
        let (x, y) = batch(dev, 32);
        let (terms, next) = distill_step::<M, _>(&mut distiller, teacher, &mut opt, x, &y, grads, step).expect("every term finite");
        grads = next;
        history.push(terms);
    }
    (distiller, history)
}

fn total(terms: &[kd_core::loss::Term]) -> f64 {
    terms.iter().map(|t| t.weight * t.value).sum()
}

fn mean_total(history: &[Vec<kd_core::loss::Term>]) -> f64 {
    history.iter().map(|t| total(t)).sum::<f64>() / history.len() as f64
}

#[test]
fn every_kind_of_knowledge_trains_a_cnn_student() {
    let dev = Cpu::seed_from_u64(5);
    let teacher = trained_teacher(&dev);
    let adapters_before = Student::build_distiller(&Cpu::seed_from_u64(9)).adapters.0.weight.as_vec();

    let (distiller, history) = distil::<Student>(&dev, &teacher, 300);
    let names: Vec<&str> = history[0].iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "ce",
            "kd",
            "hint.conv1",
            "hint.conv2",
            "attention.conv1",
            "attention.conv2",
            "sparsity.conv1",
            "sparsity.conv2",
            "rkd_distance.conv1",
            "rkd_angle.conv1",
            "sp.conv1",
            "rkd_distance.conv2",
            "rkd_angle.conv2",
            "sp.conv2"
        ]
    );
    assert!(history.iter().flatten().all(|t| t.value.is_finite()));
    let (early, late) = (mean_total(&history[..20]), mean_total(&history[history.len() - 20..]));
    assert!(late < 0.7 * early, "the total loss falls: {early:.3} -> {late:.3}");
    assert_ne!(distiller.adapters.0.weight.as_vec(), adapters_before, "the adapters train");
}

/// The generated loss back-propagates into the student and its adapters and never into the
/// teacher: after a backward pass the teacher's tensors have no gradient at all (so no
/// optimiser can move them), while the student's and the adapters' gradients are non-zero.
#[test]
fn no_gradient_reaches_the_teacher() {
    let dev = Cpu::seed_from_u64(7);
    let teacher = trained_teacher(&dev);
    let mut distiller = Student::build_distiller(&dev);
    let grads = distiller.alloc_grads();
    let (x, y) = batch(&dev, 8);
    let grads = Student::distill_loss(&mut distiller, &teacher, x, &y, grads)
        .unwrap()
        .into_total()
        .backward();
    let nonzero = |g: Vec<f32>| g.iter().any(|v| *v != 0.0);
    assert!(nonzero(grads.get(&distiller.student.conv1.weight).as_vec()), "the student learns");
    assert!(nonzero(grads.get(&distiller.adapters.0.weight).as_vec()), "the adapters learn");
    for (name, has_gradient) in [
        (
            "conv1",
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| grads.get(&teacher.conv1.weight))).is_ok(),
        ),
        (
            "head",
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| grads.get(&teacher.head.weight))).is_ok(),
        ),
    ] {
        assert!(!has_gradient, "the teacher's {name} received a gradient");
    }
}

#[test]
fn nst_gradient_attention_and_self_distillation_generate_their_terms() {
    let dev = Cpu::seed_from_u64(6);
    let teacher = trained_teacher(&dev);
    let (_, history) = distil::<NstStudent>(&dev, &teacher, 60);
    let names: Vec<&str> = history[0].iter().map(|t| t.name).collect();
    assert_eq!(names, ["ce", "kd", "nst.conv2", "gradient_attention", "attention.conv2"]);
    let weights: Vec<f64> = history[0].iter().map(|t| t.weight).collect();
    // `weight = 10` on the kind, `weight = 2` on the pair: every term of the pair is scaled.
    assert_eq!(
        weights,
        [
            0.1,
            0.9,
            20.0,
            kd_core::distill::weights::GRADIENT_ATTENTION,
            2.0 * kd_core::distill::weights::ATTENTION
        ]
    );
    assert!(history.iter().flatten().all(|t| t.value.is_finite()));

    let born_teacher = dev.build_module::<BornAgain, f32>();
    let (_, history) = distil::<BornAgain>(&dev, &born_teacher, 30);
    let names: Vec<&str> = history[0].iter().map(|t| t.name).collect();
    assert_eq!(names, ["ce", "kd", "fsp.conv1.conv2"]);

    // Before, every FSP term took its first pair's weight only: 1 and 2 here.
    let weighted_teacher = dev.build_module::<WeightedFsp, f32>();
    let (_, history) = distil::<WeightedFsp>(&dev, &weighted_teacher, 1);
    let fsp: Vec<(&str, f64)> = history[0].iter().skip(2).map(|t| (t.name, t.weight)).collect();
    let unit = kd_core::distill::weights::FSP;
    assert_eq!(fsp, [("fsp.conv1.conv2", 2.0 * unit), ("fsp.conv2.conv3", 6.0 * unit)]);
}

/// Twenty-one layers, past the sixteen that the teacher's layer chain once allowed.
#[model]
struct DeepTeacher {
    c1: Conv2D<1, 4, 3, 1, 1>,
    r1: ReLU,
    c2: Conv2D<4, 4, 3, 1, 1>,
    r2: ReLU,
    c3: Conv2D<4, 4, 3, 1, 1>,
    r3: ReLU,
    c4: Conv2D<4, 4, 3, 1, 1>,
    r4: ReLU,
    c5: Conv2D<4, 4, 3, 1, 1>,
    r5: ReLU,
    c6: Conv2D<4, 4, 3, 1, 1>,
    r6: ReLU,
    c7: Conv2D<4, 4, 3, 1, 1>,
    r7: ReLU,
    c8: Conv2D<4, 4, 3, 1, 1>,
    r8: ReLU,
    pool: MaxPool2D<2, 2>,
    c9: Conv2D<4, 8, 3, 1, 1>,
    r9: ReLU,
    flat: Flatten2D<128>,
    head: Linear<128, 3>,
}

/// Pairs with the deep teacher's nineteenth layer; the 4×4 maps are checked at compile time.
#[distill(teacher = DeepTeacher, input = [1, 8, 8], match(attention))]
struct StudentOfDeep {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    relu1: ReLU,
    pool: MaxPool2D<2, 2>,
    #[distill(pair = c9)]
    conv2: Conv2D<4, 8, 3, 1, 1>,
    relu2: ReLU,
    flat: Flatten2D<128>,
    head: Linear<128, 3>,
}

#[test]
fn a_teacher_of_any_depth_pairs_with_size_checks() {
    let dev = Cpu::seed_from_u64(9);
    let teacher = dev.build_module::<DeepTeacher, f32>();
    let mut distiller = StudentOfDeep::build_distiller(&dev);
    let mut opt = Adam::new(&distiller, AdamConfig::default());
    let x: Tensor<(usize, Const<1>, usize, usize), f32, _> = dev.sample_normal_like(&(2, Const, 8, 8));
    let grads = distiller.alloc_grads();
    let (terms, _) = distill_step::<StudentOfDeep, _>(&mut distiller, &teacher, &mut opt, x, &[0, 2], grads, 0).expect("a finite step");
    assert_eq!(terms.iter().map(|t| t.name).collect::<Vec<_>>(), ["ce", "kd", "attention.conv2"]);
}

/// Per-pair kinds: `conv1` takes a hint of its own (weight 5), `conv2` the container's attention.
#[distill(teacher = Teacher, input = [1, 8, 8], match(attention))]
struct MixedStudent {
    #[distill(pair, features(hint, weight = 5.0))]
    conv1: Conv2D<1, 4, 3, 1, 1>,
    relu1: ReLU,
    pool1: MaxPool2D<2, 2>,
    #[distill(pair)]
    conv2: Conv2D<4, 8, 3, 1, 1>,
    relu2: ReLU,
    pool2: MaxPool2D<2, 2>,
    flat: Flatten2D<32>,
    head: Linear<32, 3>,
}

#[test]
fn a_field_names_the_kinds_of_its_own_pair() {
    let settings = MixedStudent::settings();
    let attention = kd_core::distill::weights::ATTENTION;
    assert_eq!(settings.terms, [("attention.conv2", attention), ("hint.conv1", 5.0)]);
    let dev = Cpu::seed_from_u64(10);
    let teacher = dev.build_module::<Teacher, f32>();
    let mut distiller = MixedStudent::build_distiller(&dev);
    let mut opt = Adam::new(&distiller, AdamConfig::default());
    let x: Tensor<(usize, Const<1>, usize, usize), f32, _> = dev.sample_normal_like(&(2, Const, 8, 8));
    let grads = distiller.alloc_grads();
    let (terms, _) = distill_step::<MixedStudent, _>(&mut distiller, &teacher, &mut opt, x, &[0, 2], grads, 0).expect("a finite step");
    let named: Vec<(&str, f64)> = terms.iter().map(|t| (t.name, t.weight)).collect();
    assert_eq!(
        named,
        [("ce", 0.1), ("kd", 0.9), ("attention.conv2", attention), ("hint.conv1", 5.0)]
    );
}

/// A ResNet-style teacher: a residual block and a repeated block before the paired layer, and a
/// layer kd has no size rule for (`Bias2D`), declared size-preserving.
#[model]
struct ResidualTeacher {
    stem: Conv2D<1, 8, 3, 1, 1>,
    relu: ReLU,
    block: dfdx::nn::builders::Residual<(Conv2D<8, 8, 3, 1, 1>, ReLU)>,
    #[distill(keeps_shape)]
    bias: dfdx::nn::builders::Bias2D<8>,
    down: dfdx::nn::builders::Repeated<(MaxPool2D<2, 2>, ReLU), 1>,
    conv: Conv2D<8, 8, 3, 1, 1>,
    flat: Flatten2D<128>,
    head: Linear<128, 3>,
}

/// Pairs with the teacher's `conv` (4×4 after the repeated pool): checked at compile time.
#[distill(teacher = ResidualTeacher, input = [1, 8, 8], match(features))]
struct StudentOfResidual {
    conv1: Conv2D<1, 4, 3, 1, 1>,
    #[distill(keeps_shape)]
    bias: dfdx::nn::builders::Bias2D<4>,
    pool: MaxPool2D<2, 2>,
    #[distill(pair = conv)]
    conv2: Conv2D<4, 4, 3, 1, 1>,
    flat: Flatten2D<64>,
    head: Linear<64, 3>,
}

#[test]
fn residual_repeated_and_declared_layers_pair() {
    let dev = Cpu::seed_from_u64(11);
    let teacher = dev.build_module::<ResidualTeacher, f32>();
    let mut distiller = StudentOfResidual::build_distiller(&dev);
    let mut opt = Adam::new(&distiller, AdamConfig::default());
    let x: Tensor<(usize, Const<1>, usize, usize), f32, _> = dev.sample_normal_like(&(2, Const, 8, 8));
    let grads = distiller.alloc_grads();
    let (terms, _) = distill_step::<StudentOfResidual, _>(&mut distiller, &teacher, &mut opt, x, &[1, 2], grads, 0).expect("a finite step");
    assert_eq!(terms.iter().map(|t| t.name).collect::<Vec<_>>(), ["ce", "kd", "hint.conv2"]);
}
