//! Behaviour tests of the training regimes on small subsets of real MNIST: each asserts its
//! mechanism and that its loss terms fall.

use dfdx::prelude::*;
use kd_core::data::mnist::{self, Split};
use kd_core::distill;
use kd_core::distill::{distill_step, Distill};
use kd_core::loss::{ByotConfig, Term};
use kd_core::models::byot_cnn::ByotCnn;
use kd_core::nn::builders::Linear;
use kd_core::regime::born_again::{ensemble_probabilities, Generations};
use kd_core::regime::deep_supervision::deep_supervision_loss;
use kd_core::regime::mutual::{mutual_step, Peer};
use kd_core::train::{supervised_step, Adam, Sgd};

fn subset(images: usize) -> (Split, Split) {
    let data = mnist::load_or_fetch().unwrap_or_else(|e| panic!("MNIST: {e}"));
    (data.train.take(images), data.test.take(1000))
}

fn vectors(dev: &Cpu, split: &Split, indices: &[usize]) -> (Tensor<(usize, Const<784>), f32, Cpu>, Vec<usize>) {
    let (pixels, labels) = split.batch(indices);
    (dev.tensor_from_vec(pixels, (indices.len(), Const)), labels)
}

fn images(dev: &Cpu, split: &Split, indices: &[usize]) -> (kd_core::models::byot_cnn::Input, Vec<usize>) {
    let (pixels, labels) = split.batch(indices);
    (dev.tensor_from_vec(pixels, (indices.len(), Const, 28, 28)), labels)
}

fn value(terms: &[Term], name: &str) -> f64 {
    terms
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.value)
        .unwrap_or_else(|| panic!("no term `{name}` in {terms:?}"))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// A born-again MLP: its teacher is its own architecture.
#[distill(teacher = Self, input = [784], temp = 4.0)]
struct Mlp {
    fc1: Linear<784, 64>,
    act: ReLU,
    fc2: Linear<64, 10>,
}

#[test]
fn born_again_generations_learn_from_the_previous_one() {
    let (train, test) = subset(2000);
    let dev = Cpu::seed_from_u64(1);
    let order: Vec<usize> = (0..train.len()).collect();
    let mut kd_curves = Vec::new();
    let generations = Generations::train(
        3,
        |k| Mlp::build_distiller(&Cpu::seed_from_u64(10 + k as u64)),
        |k, distiller, teacher| -> Result<(), kd_core::distill::StepError> {
            // A fresh optimiser per generation.
            let mut optimizer = Adam::new(AdamConfig {
                lr: 2e-3,
                ..Default::default()
            });
            let mut grads = distiller.alloc_grads();
            let mut kd = Vec::new();
            for epoch in 0..2 {
                for (step, chunk) in order.chunks(64).enumerate() {
                    let (x, y) = vectors(&dev, &train, chunk);
                    let (terms, next) = match teacher {
                        None => supervised_step(&mut distiller.student, &mut optimizer, x, &y, grads, step)?,
                        Some(previous) => {
                            // Generation k's teacher is generation k − 1, unchanged by this one's training.
                            let (terms, next) = distill_step::<Mlp, _>(distiller, &previous.student, &mut optimizer, x, &y, grads, step)?;
                            kd.push((epoch, value(&terms, "kd")));
                            (terms, next)
                        }
                    };
                    assert!(terms.iter().all(|t| t.value.is_finite()));
                    grads = next;
                }
            }
            if k > 0 {
                kd_curves.push(kd);
            }
            Ok(())
        },
    )
    .expect("finite");
    assert_eq!(generations.models.len(), 3);
    for (k, curve) in kd_curves.iter().enumerate() {
        let first: Vec<f64> = curve.iter().filter(|(e, _)| *e == 0).map(|(_, v)| *v).take(5).collect();
        let last: Vec<f64> = curve.iter().filter(|(e, _)| *e == 1).map(|(_, v)| *v).collect();
        assert!(
            mean(&last) < 0.5 * mean(&first),
            "generation {}: KD term {} -> {}",
            k + 1,
            mean(&first),
            mean(&last)
        );
    }
    // Each generation classifies far above chance, and so does their ensemble.
    let indices: Vec<usize> = (0..test.len()).collect();
    let (x, labels) = vectors(&dev, &test, &indices);
    let logits: Vec<Vec<f32>> = generations.models.iter().map(|m| m.student.forward(x.clone()).as_vec()).collect();
    for model_logits in logits.iter().chain([&ensemble_probabilities(&logits, 10)]) {
        let right = kd_core::metrics::correct(&kd_core::metrics::argmax_rows(model_logits, 10), &labels);
        assert!(right > 800, "{right} of 1000 right");
    }
}

#[test]
fn mutual_peers_of_different_widths_learn_together() {
    let (train, test) = subset(2000);
    let dev = Cpu::seed_from_u64(2);
    let mut narrow = Peer::new(
        dev.build_module::<(Linear<784, 32>, ReLU, Linear<32, 10>), f32>(),
        Sgd::new(SgdConfig {
            lr: 0.05,
            momentum: Some(Momentum::Classic(0.9)),
            weight_decay: None,
        }),
    );
    let mut wide = Peer::new(
        dev.build_module::<(Linear<784, 128>, ReLU, Linear<128, 10>), f32>(),
        Adam::new(AdamConfig {
            lr: 1e-3,
            ..Default::default()
        }),
    );
    let order: Vec<usize> = (0..train.len()).collect();
    let mut history: Vec<Vec<Vec<Term>>> = Vec::new();
    for _ in 0..2 {
        for (step, chunk) in order.chunks(64).enumerate() {
            let (x, y) = vectors(&dev, &train, chunk);
            let terms = mutual_step::<_, 10>(&mut [&mut narrow, &mut wide], x, &y, step).expect("finite");
            assert_eq!(terms.len(), 2);
            history.push(terms);
        }
    }
    // Untrained peers agree (near-uniform outputs), so the KL starts near 0; each peer's
    // objective, CE + KL, falls, and the KL stays positive: the peers keep teaching.
    let steps = history.len();
    let total = |terms: &[Term]| terms.iter().map(|t| t.weight * t.value).sum::<f64>();
    for peer in 0..2 {
        let first = mean(&history[..5].iter().map(|t| total(&t[peer])).collect::<Vec<_>>());
        let last = mean(&history[steps - 5..].iter().map(|t| total(&t[peer])).collect::<Vec<_>>());
        assert!(last < 0.5 * first, "peer {peer}: CE + KL {first} -> {last}");
        assert!(
            history[steps - 5..].iter().all(|t| value(&t[peer], "kl") > 0.0),
            "peer {peer} receives a KL"
        );
    }
    let indices: Vec<usize> = (0..test.len()).collect();
    let (x, labels) = vectors(&dev, &test, &indices);
    for logits in [narrow.model.forward(x.clone()).as_vec(), wide.model.forward(x).as_vec()] {
        let right = kd_core::metrics::correct(&kd_core::metrics::argmax_rows(&logits, 10), &labels);
        assert!(right > 700, "{right} of 1000 right (chance: 100)");
    }
}

#[test]
fn shallow_heads_receive_the_kl_and_the_feature_term() {
    let (train, _) = subset(1000);
    let dev = Cpu::seed_from_u64(3);
    let config = ByotConfig {
        alpha: 0.3,
        temperature: 3.0,
        feature_weight: 0.03,
    };
    let (x, y) = images(&dev, &train, &(0..32).collect::<Vec<_>>());

    // The feature term reaches the bottleneck: its gradient differs with and without it.
    let network = ByotCnn::build(&Cpu::seed_from_u64(4));
    let bottleneck_grad = |config: Option<&ByotConfig>| {
        let mut network = network.clone();
        let grads = network.alloc_grads();
        let loss = deep_supervision_loss(network.forward_heads(x.clone().traced(grads)), &y, config).unwrap();
        let grads = loss.into_total().backward();
        grads.get(&network.bottlenecks.0 .0.weight).as_vec()
    };
    let without_feature = ByotConfig {
        feature_weight: 0.0,
        ..config
    };
    assert_ne!(bottleneck_grad(Some(&config)), bottleneck_grad(Some(&without_feature)));
    assert_ne!(
        bottleneck_grad(Some(&without_feature)),
        bottleneck_grad(None),
        "the KL term reaches head 1"
    );

    // Every shallow head has its three terms, and they fall with training.
    let mut network = ByotCnn::build(&Cpu::seed_from_u64(5));
    let mut optimizer = Adam::new(AdamConfig {
        lr: 2e-3,
        ..Default::default()
    });
    let mut grads = network.alloc_grads();
    let order: Vec<usize> = (0..train.len()).collect();
    let mut history = Vec::new();
    for epoch in 0..6 {
        for (step, chunk) in order.chunks(32).enumerate() {
            let (x, y) = images(&dev, &train, chunk);
            let loss = deep_supervision_loss(network.forward_heads(x.traced(grads)), &y, Some(&config)).unwrap();
            let (terms, next) = kd_core::distill::apply_step(loss, &mut network, &mut optimizer, epoch * 100 + step).expect("finite");
            grads = next;
            history.push(terms);
        }
    }
    let names: Vec<&str> = history[0].iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "deepest.ce",
            "head1.ce",
            "head1.kd",
            "head1.feature",
            "head2.ce",
            "head2.kd",
            "head2.feature"
        ]
    );
    // The heads start out agreeing (near-uniform), so the KL terms start near 0; the CE terms
    // and the whole objective fall, and the KL and feature terms stay in play.
    let steps = history.len();
    let total = |terms: &[Term]| terms.iter().map(|t| t.weight * t.value).sum::<f64>();
    let first = mean(&history[..10].iter().map(|t| total(t)).collect::<Vec<_>>());
    let last = mean(&history[steps - 10..].iter().map(|t| total(t)).collect::<Vec<_>>());
    assert!(last < 0.85 * first, "the objective {first} -> {last}");
    for name in ["deepest.ce", "head1.ce", "head2.ce"] {
        let first = mean(&history[..10].iter().map(|t| value(t, name)).collect::<Vec<_>>());
        let last = mean(&history[steps - 10..].iter().map(|t| value(t, name)).collect::<Vec<_>>());
        assert!(last < first, "`{name}` {first} -> {last}");
    }
    for name in ["head1.kd", "head2.kd", "head1.feature", "head2.feature"] {
        assert!(history[steps - 10..].iter().all(|t| value(t, name) > 0.0), "`{name}` is in play");
    }
}

#[test]
fn netaug_trains_the_tiny_model_through_the_wide_one() {
    use kd_core::regime::netaug::NetAugMlp;
    use rand::{Rng, SeedableRng};

    let (train, test) = subset(2000);
    let dev = Cpu::seed_from_u64(6);
    let mut model = NetAugMlp::<784, 16, 48, 10>::build(&dev);
    let mut optimizer = Adam::new(AdamConfig {
        lr: 2e-3,
        ..Default::default()
    });
    let mut grads = model.alloc_grads();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let order: Vec<usize> = (0..train.len()).collect();
    let mut history = Vec::new();
    for epoch in 0..3 {
        for (step, chunk) in order.chunks(64).enumerate() {
            let (x, y) = vectors(&dev, &train, chunk);
            let extra = [16, 32, 48][rng.gen_range(0..3)];
            let loss = model.loss(x.traced(grads), &y, extra, 1.0).unwrap();
            let (terms, next) = kd_core::distill::apply_step(loss, &mut model, &mut optimizer, epoch * 100 + step).expect("finite");
            grads = next;
            history.push(terms);
        }
    }
    let steps = history.len();
    for name in ["tiny.ce", "augmented.ce"] {
        let first = mean(&history[..5].iter().map(|t| value(t, name)).collect::<Vec<_>>());
        let last = mean(&history[steps - 5..].iter().map(|t| value(t, name)).collect::<Vec<_>>());
        assert!(last < 0.5 * first, "`{name}` {first} -> {last}");
    }
    // Only the tiny model runs at inference, and it has learned.
    let indices: Vec<usize> = (0..test.len()).collect();
    let (x, labels) = vectors(&dev, &test, &indices);
    let right = kd_core::metrics::correct(&kd_core::metrics::argmax_rows(&model.tiny.forward(x).as_vec(), 10), &labels);
    assert!(right > 800, "{right} of 1000 right");
}

#[test]
fn the_generators_adapters_learn_and_the_distillation_terms_fall() {
    use kd_core::distill::{TappedModule, TappedModuleMut};
    use kd_core::models::gan::{Adapters, Discriminator, StudentGenerator, TeacherGenerator};
    use kd_core::regime::generative::{generator_distill_loss, GanCompressionConfig};

    let (train, _) = subset(640);
    let dev = Cpu::seed_from_u64(8);
    let flat = |t: Tensor<(usize, Const<64>, usize, usize), f32, Cpu>| {
        let b = t.shape().0;
        t.reshape_like(&(b, 64 * 49))
    };
    let teacher = dev.build_module::<TeacherGenerator, f32>();
    let discriminator = dev.build_module::<Discriminator, f32>();
    let mut student = (dev.build_module::<StudentGenerator, f32>(), dev.build_module::<Adapters, f32>());
    let mut optimizer = Adam::new(AdamConfig {
        lr: 1e-3,
        ..Default::default()
    });
    let order: Vec<usize> = (0..train.len()).collect();
    let mut history = Vec::new();
    for epoch in 0..4 {
        for (step, chunk) in order.chunks(32).enumerate() {
            let (pixels, _) = train.batch(chunk);
            let x = dev.tensor_from_vec(pixels, (chunk.len(), Const::<1>, 28, 28));
            let (teacher_output, teacher_taps) = teacher.try_forward_tapped(x.clone()).expect("teacher");
            let grads = student.alloc_grads();
            let (fake, taps) = student.0.try_forward_tapped_mut(x.clone().traced(grads)).expect("student");
            let (fake, tape) = fake.split_tape();
            // The conditional discriminator sees the input beside the image.
            let batch = chunk.len();
            type Pair = Tensor<(usize, Const<2>, usize, usize), f32, Cpu, OwnedTape<f32, Cpu>>;
            let pair: Pair = (
                fake.retaped::<OwnedTape<f32, Cpu>>()
                    .reshape_like(&(batch, 1usize, 28usize, 28usize)),
                x.reshape_like(&(batch, 1usize, 28usize, 28usize)),
            )
                .concat_along(Axis::<1>)
                .realize();
            let fake_logits = discriminator.forward(pair);
            let enc2 = student.1 .0.forward(taps.enc2.retaped::<OwnedTape<f32, Cpu>>());
            let enc2 = {
                let b = enc2.shape().0;
                enc2.reshape_like(&(b, 64 * 49))
            };
            let features = vec![("distill.enc2", enc2, flat(teacher_taps.enc2))];
            let loss = generator_distill_loss(
                fake.put_tape(tape),
                teacher_output,
                features,
                fake_logits,
                &GanCompressionConfig::default(),
            )
            .unwrap();
            let before = student.1 .0.weight.as_vec();
            let (terms, _) = kd_core::distill::apply_step(loss, &mut student, &mut optimizer, epoch * 20 + step).expect("finite");
            assert_ne!(before, student.1 .0.weight.as_vec(), "the enc2 adapter is updated");
            history.push(terms);
        }
    }
    let steps = history.len();
    for name in ["recon", "distill.enc2"] {
        let first = mean(&history[..5].iter().map(|t| value(t, name)).collect::<Vec<_>>());
        let last = mean(&history[steps - 5..].iter().map(|t| value(t, name)).collect::<Vec<_>>());
        assert!(last < 0.5 * first, "`{name}` {first} -> {last}");
    }
}

mod language {
    use super::{mean, value};
    use dfdx::prelude::*;
    use kd_core::data::fortunes::{self, VOCAB};
    use kd_core::loss::{cross_entropy_loss, hint_loss, LossTerms};
    use kd_core::nn::builders::Linear;
    use kd_core::nn::transformer::Transformer;
    use kd_core::regime::language::{distilbert_loss, tinybert_loss, DistilBertConfig, TinyBertConfig};
    use kd_core::train::Adam;
    use rand::{Rng, SeedableRng};

    type Teacher = Transformer<VOCAB, 32, 4, 64, 2, 16>;
    type Wide = Transformer<VOCAB, 32, 4, 64, 1, 16>;
    type Narrow = Transformer<VOCAB, 16, 4, 32, 1, 16>;
    type Taped = OwnedTape<f32, Cpu>;

    fn batch(text: &[usize], rng: &mut rand::rngs::StdRng) -> (Tensor<(usize, usize), usize, Cpu>, Vec<usize>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..16 {
            let start = rng.gen_range(0..text.len() - 17);
            x.extend_from_slice(&text[start..start + 16]);
            y.extend_from_slice(&text[start + 1..start + 17]);
        }
        (Cpu::default().tensor_from_vec(x, (16, 16)), y)
    }

    fn adam() -> Adam {
        Adam::new(AdamConfig {
            lr: 3e-3,
            ..Default::default()
        })
    }

    /// Trains a small teacher on real text, then a DistilBERT and a TinyBERT student from it:
    /// the TinyBERT terms follow the uniform layer map, and every student's terms fall.
    #[test]
    fn distilbert_and_tinybert_students_learn_from_a_trained_teacher() {
        let corpus = fortunes::load().unwrap_or_else(|e| panic!("{e}"));
        let text = &corpus.train[..200_000];
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut teacher = Teacher::build(&Cpu::seed_from_u64(1));
        let mut optimizer = adam();
        let mut grads = teacher.alloc_grads();
        let mut teacher_ce = Vec::new();
        for step in 0..60 {
            let (x, y) = batch(text, &mut rng);
            let loss = LossTerms::new().add(
                "ce",
                1.0,
                cross_entropy_loss(teacher.forward_all(x.traced(grads)).logits, &y).unwrap(),
            );
            let (terms, next) = kd_core::distill::apply_step(loss, &mut teacher, &mut optimizer, step).expect("finite");
            grads = next;
            teacher_ce.push(terms[0].value);
        }
        assert!(
            mean(&teacher_ce[50..]) < 0.8 * mean(&teacher_ce[..5]),
            "the teacher learns: {teacher_ce:?}"
        );

        // TinyBERT: student layer 1 learns from teacher layer 2 (the uniform map for 1 ← 2).
        let dev = Cpu::seed_from_u64(2);
        let mut narrow = (Narrow::build(&dev), dev.build_module::<(Linear<16, 32>, Linear<16, 32>), f32>());
        let (x, _) = batch(text, &mut rng);
        let student = narrow.0.forward_all(x.clone().leaky_traced());
        let expected_hidden = {
            let hidden = narrow.0.forward_all(x.clone()).hidden.remove(0);
            let target = teacher.forward_all(x.clone()).hidden.remove(1);
            kd_core::ops::value_of(&hint_loss(narrow.1 .0.forward(hidden), target).unwrap())
        };
        let loss = tinybert_loss(
            student,
            teacher.forward_all(x.clone()),
            |h| narrow.1 .0.forward(h),
            |e| narrow.1 .1.forward(e),
            &TinyBertConfig::default(),
        )
        .unwrap();
        let names: Vec<&str> = loss.terms().iter().map(|t| t.name).collect();
        assert_eq!(names, ["embedding", "hidden.1", "attention.1", "prediction"]);
        assert!(
            (value(loss.terms(), "hidden.1") - expected_hidden).abs() < 1e-5,
            "hidden.1 compares with teacher layer 2"
        );

        let mut optimizer = adam();
        let mut grads = narrow.alloc_grads();
        let mut history = Vec::new();
        for step in 0..40 {
            let (x, _) = batch(text, &mut rng);
            let teacher_outputs = teacher.forward_all(x.clone());
            let (model, projections) = &narrow;
            let loss = tinybert_loss(
                model.forward_all(x.traced(grads)),
                teacher_outputs,
                |h| projections.0.forward(h),
                |e| projections.1.forward(e),
                &TinyBertConfig::default(),
            )
            .unwrap();
            let (terms, next) = kd_core::distill::apply_step(loss, &mut narrow, &mut optimizer, step).expect("finite");
            grads = next;
            history.push(terms);
        }
        for name in ["embedding", "hidden.1", "attention.1", "prediction"] {
            let first = mean(&history[..3].iter().map(|t| value(t, name)).collect::<Vec<_>>());
            let last = mean(&history[37..].iter().map(|t| value(t, name)).collect::<Vec<_>>());
            assert!(last < first, "TinyBERT `{name}` {first} -> {last}");
        }

        // DistilBERT: the same width, half the depth.
        let mut wide = Wide::build(&Cpu::seed_from_u64(3));
        let mut optimizer = adam();
        let mut grads = wide.alloc_grads();
        let mut history = Vec::new();
        for step in 0..40 {
            let (x, y) = batch(text, &mut rng);
            let teacher_outputs = teacher.forward_all(x.clone());
            let student: kd_core::nn::transformer::Outputs<VOCAB, 32, Taped> = wide.forward_all(x.traced(grads));
            let loss = distilbert_loss(student, teacher_outputs, &y, &DistilBertConfig::default()).unwrap();
            let (terms, next) = kd_core::distill::apply_step(loss, &mut wide, &mut optimizer, step).expect("finite");
            grads = next;
            history.push(terms);
        }
        for name in ["soft_ce", "ce", "cos"] {
            let first = mean(&history[..3].iter().map(|t| value(t, name)).collect::<Vec<_>>());
            let last = mean(&history[37..].iter().map(|t| value(t, name)).collect::<Vec<_>>());
            assert!(last < first, "DistilBERT `{name}` {first} -> {last}");
        }
    }
}
