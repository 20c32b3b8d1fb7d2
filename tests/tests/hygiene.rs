//! Generated code names everything by absolute path: it compiles with the prelude's types
//! shadowed and every warning denied (serde's `test_gen.rs`).
#![deny(warnings)]

#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
struct String;
#[allow(dead_code)]
struct Tensor;
#[allow(dead_code)]
struct Module;
#[allow(dead_code)]
struct Distiller;

/// Layer types named like the macro's generated items.
type Built = Linear<4, 8>;
type Taps = ReLU;

use dfdx::prelude::{Linear, ReLU};
use kd_core::nn::builders::{Conv2D, Flatten2D, MaxPool2D};
use kd_core::{distill, model};

/// The teacher.
#[model]
pub struct Teacher {
    fc1: Linear<4, 16>,
    act: ReLU,
    fc2: Linear<16, 16>,
    head: Linear<16, 3>,
}

/// The student.
#[distill(teacher = Teacher, input = [4], temp = 2, ce_weight = 0.5, kd_weight = 0.5, match(features, relations(samples)))]
pub struct Student {
    fc1: Linear<4, 8>,
    act: ReLU,
    #[distill(pair = fc2, weight = 0.5)]
    fc2: Linear<8, 8>,
    head: Linear<8, 3>,
}

/// A student whose field types are named `Built` and `Taps`.
#[distill(teacher = Teacher, input = [4], match(features))]
pub struct NamedLikeGenerated {
    fc1: Built,
    act: Taps,
    #[distill(pair = fc2)]
    fc2: Linear<8, 8>,
    head: Linear<8, 3>,
}

mod zoo {
    use dfdx::prelude::{Linear, ReLU};

    /// A teacher declared in another module.
    #[kd_core::model]
    pub struct Teacher {
        pub fc1: Linear<4, 16>,
        act: ReLU,
        fc2: Linear<16, 16>,
        head: Linear<16, 3>,
    }
}

use zoo::Teacher as BigNet;

/// A teacher named through `use … as` (the generated code found the teacher's fields by the
/// name's last segment before, so this failed with a hidden trait's name).
#[distill(teacher = BigNet, input = [4], match(features))]
pub struct FromAlias {
    fc1: Linear<4, 8>,
    act: ReLU,
    #[distill(pair = fc2)]
    fc2: Linear<8, 8>,
    head: Linear<8, 3>,
}

/// And through a path.
#[distill(teacher = zoo::Teacher, input = [4], match(features))]
pub struct FromPath {
    fc1: Linear<4, 8>,
    act: ReLU,
    #[distill(pair = fc2)]
    fc2: Linear<8, 8>,
    head: Linear<8, 3>,
}

/// Two teachers, one through a path, with a pairing from each and one soft term per teacher.
#[distill(teachers(near = Teacher, far = zoo::Teacher), teacher_weights(far = 0.5), ensemble = each, input = [4], match(features))]
pub struct OfTwoTeachers {
    #[distill(pair = near.fc1)]
    fc1: Linear<4, 8>,
    act: ReLU,
    #[distill(pair = far.fc2)]
    fc2: Linear<8, 8>,
    head: Linear<8, 3>,
}

mod nested {
    use super::*;

    /// More than six layers: dfdx's tuples stop at six, the generated code nests them.
    #[distill(teacher = Self, input = [1, 8, 8], dtype = f64, crate = "kd_core", match(attention(paper), sparsity))]
    pub(crate) struct Deep {
        #[distill(pair)]
        c1: Conv2D<1, 4, 3, 1, 1>,
        r1: ReLU,
        #[distill(pair)]
        c2: Conv2D<4, 4, 3, 1, 1>,
        r2: ReLU,
        p1: MaxPool2D<2, 2>,
        c3: Conv2D<4, 4, 3, 1, 1>,
        r3: ReLU,
        p2: MaxPool2D<2, 2>,
        flat: Flatten2D<16>,
        head: Linear<16, 2>,
    }
}

#[test]
fn generated_code_is_hygienic_and_warning_free() {
    use dfdx::prelude::{Cpu, DeviceBuildExt};
    use kd_core::distill::Distill;
    let dev = Cpu::default();
    let _ = Student::build_distiller(&dev);
    let _ = FromAlias::build_distiller(&dev);
    let _ = FromPath::build_distiller(&dev);
    let _ = OfTwoTeachers::build_distiller(&dev);
    let _ = dev.build_module::<<OfTwoTeachers as Distill>::Teacher, f32>();
    let named = NamedLikeGenerated::build_distiller(&dev);
    ::core::assert_eq!(named.student.fc1.weight.as_vec().len(), 4 * 8);
    let deep = nested::Deep::build_distiller(&dev);
    let _ = dev.build_module::<nested::Deep, f64>();
    ::core::assert_eq!(deep.student.c1.weight.as_vec().len(), 4 * 9);
}
