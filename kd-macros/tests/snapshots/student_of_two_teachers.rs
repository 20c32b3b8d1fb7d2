#[allow(dead_code)]
struct Student {
    fc: Linear<4, 3>,
    fc2: Linear<3, 3>,
    head: Linear<3, 2>,
}
#[allow(non_camel_case_types, clippy::type_complexity)]
const _: () = {
    use ::kd_core::__private as __kd;
    #[automatically_derived]
    impl __kd::ModelLayers for Student {
        type Layers = (Linear<4, 3>, (Linear<3, 3>, (Linear<3, 2>, ())));
        const SHAPES: &'static [__kd::LayerShape] = {
            use __kd::UnknownShape as _;
            &[
                <__kd::ShapeOf<Linear<4, 3>>>::SHAPE,
                <__kd::ShapeOf<Linear<3, 3>>>::SHAPE,
                <__kd::ShapeOf<Linear<3, 2>>>::SHAPE,
            ]
        };
    }
    pub struct Student_input;
    pub struct Student_fc;
    pub struct Student_fc2;
    pub struct Student_head;
    #[automatically_derived]
    impl __kd::LayerMarker<0> for Student {
        type Name = Student_input;
    }
    #[automatically_derived]
    impl __kd::LayerMarker<1usize> for Student {
        type Name = Student_fc;
    }
    #[automatically_derived]
    impl __kd::LayerMarker<2usize> for Student {
        type Name = Student_fc2;
    }
    #[automatically_derived]
    impl __kd::LayerMarker<3usize> for Student {
        type Name = Student_head;
    }
    #[automatically_derived]
    impl __kd::Spatial for Student
    where
        for<'__kd> (
            Linear<4, 3>,
            (Linear<3, 3>, (Linear<3, 2>, ())),
        ): __kd::SpatialChain,
    {
        const EFFECT: __kd::SpatialEffect = __kd::SpatialEffect::Chain(
            <(
                Linear<4, 3>,
                (Linear<3, 3>, (Linear<3, 2>, ())),
            ) as __kd::SpatialChain>::EFFECTS,
        );
        const TAKES: __kd::Takes = <(
            Linear<4, 3>,
            (Linear<3, 3>, (Linear<3, 2>, ())),
        ) as __kd::SpatialChain>::TAKES;
        const GIVES: __kd::Gives = <(
            Linear<4, 3>,
            (Linear<3, 3>, (Linear<3, 2>, ())),
        ) as __kd::SpatialChain>::GIVES;
    }
    #[automatically_derived]
    impl __kd::ModelField<(__kd::Char<'f'>, __kd::Char<'c'>)> for Student {
        type Layer = Linear<4, 3>;
        const POSITION: usize = 0usize;
    }
    #[automatically_derived]
    impl __kd::ModelField<(__kd::Char<'f'>, __kd::Char<'c'>, __kd::Char<'2'>)>
    for Student {
        type Layer = Linear<3, 3>;
        const POSITION: usize = 1usize;
    }
    #[automatically_derived]
    impl __kd::ModelField<
        (__kd::Char<'h'>, __kd::Char<'e'>, __kd::Char<'a'>, __kd::Char<'d'>),
    > for Student {
        type Layer = Linear<3, 2>;
        const POSITION: usize = 2usize;
    }
    /// The layers of the model, built on a device.
    #[derive(Debug, Clone)]
    pub struct __KdBuilt<__KdF0, __KdF1, __KdF2> {
        pub fc: __KdF0,
        pub fc2: __KdF1,
        pub head: __KdF2,
    }
    /// Every layer's output, untaped.
    #[derive(Debug, Clone)]
    pub struct __KdTaps<__KdF0, __KdF1, __KdF2> {
        pub fc: __KdF0,
        pub fc2: __KdF1,
        pub head: __KdF2,
    }
    #[automatically_derived]
    impl<
        __KdD: __kd::Device<__KdE>,
        __KdE: __kd::Dtype,
    > __kd::BuildOnDevice<__KdD, __KdE> for Student
    where
        Linear<4, 3>: __kd::BuildOnDevice<__KdD, __KdE>,
        Linear<3, 3>: __kd::BuildOnDevice<__KdD, __KdE>,
        Linear<3, 2>: __kd::BuildOnDevice<__KdD, __KdE>,
        __KdBuilt<
            <Linear<4, 3> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
            <Linear<3, 3> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
            <Linear<3, 2> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
        >: __kd::BuildModule<__KdD, __KdE>,
    {
        type Built = __KdBuilt<
            <Linear<4, 3> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
            <Linear<3, 3> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
            <Linear<3, 2> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
        >;
    }
    #[automatically_derived]
    impl<
        __KdE: __kd::Dtype,
        __KdD: __kd::Device<__KdE>,
        __KdF0: __kd::TensorCollection<__KdE, __KdD>,
        __KdF1: __kd::TensorCollection<__KdE, __KdD>,
        __KdF2: __kd::TensorCollection<__KdE, __KdD>,
    > __kd::TensorCollection<__KdE, __KdD> for __KdBuilt<__KdF0, __KdF1, __KdF2> {
        type To<__KdE2: __kd::Dtype, __KdD2: __kd::Device<__KdE2>> = __KdBuilt<
            __KdF0::To<__KdE2, __KdD2>,
            __KdF1::To<__KdE2, __KdD2>,
            __KdF2::To<__KdE2, __KdD2>,
        >;
        fn iter_tensors<__KdV: __kd::ModuleVisitor<Self, __KdE, __KdD>>(
            visitor: &mut __KdV,
        ) -> __kd::Result<__kd::Option<Self::To<__KdV::E2, __KdV::D2>>, __KdV::Err> {
            visitor
                .visit_fields(
                    (
                        Self::module(::core::stringify!(fc), |s| &s.fc, |s| &mut s.fc),
                        Self::module(
                            ::core::stringify!(fc2),
                            |s| &s.fc2,
                            |s| &mut s.fc2,
                        ),
                        Self::module(
                            ::core::stringify!(head),
                            |s| &s.head,
                            |s| &mut s.head,
                        ),
                    ),
                    |(fc, fc2, head)| __KdBuilt { fc, fc2, head },
                )
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1, __KdF2> __kd::Module<__KdInput>
    for __KdBuilt<__KdF0, __KdF1, __KdF2>
    where
        __KdF0: __kd::Module<__KdInput>,
        __KdF1: __kd::Module<__KdF0::Output, Error = __KdF0::Error>,
        __KdF2: __kd::Module<__KdF1::Output, Error = __KdF0::Error>,
    {
        type Output = __KdF2::Output;
        type Error = __KdF0::Error;
        fn try_forward(
            &self,
            __kd_x: __KdInput,
        ) -> __kd::Result<Self::Output, Self::Error> {
            let __kd_x = __kd::Module::try_forward(&self.fc, __kd_x)?;
            let __kd_x = __kd::Module::try_forward(&self.fc2, __kd_x)?;
            let __kd_x = __kd::Module::try_forward(&self.head, __kd_x)?;
            __kd::Result::Ok(__kd_x)
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1, __KdF2> __kd::ModuleMut<__KdInput>
    for __KdBuilt<__KdF0, __KdF1, __KdF2>
    where
        __KdF0: __kd::ModuleMut<__KdInput>,
        __KdF1: __kd::ModuleMut<__KdF0::Output, Error = __KdF0::Error>,
        __KdF2: __kd::ModuleMut<__KdF1::Output, Error = __KdF0::Error>,
    {
        type Output = __KdF2::Output;
        type Error = __KdF0::Error;
        fn try_forward_mut(
            &mut self,
            __kd_x: __KdInput,
        ) -> __kd::Result<Self::Output, Self::Error> {
            let __kd_x = __kd::ModuleMut::try_forward_mut(&mut self.fc, __kd_x)?;
            let __kd_x = __kd::ModuleMut::try_forward_mut(&mut self.fc2, __kd_x)?;
            let __kd_x = __kd::ModuleMut::try_forward_mut(&mut self.head, __kd_x)?;
            __kd::Result::Ok(__kd_x)
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1, __KdF2> __kd::TappedModule<__KdInput>
    for __KdBuilt<__KdF0, __KdF1, __KdF2>
    where
        __KdF0: __kd::Module<__KdInput>,
        __KdF0::Output: __kd::SplitTape,
        __KdF1: __kd::Module<__KdF0::Output, Error = __KdF0::Error>,
        __KdF1::Output: __kd::SplitTape,
        __KdF2: __kd::Module<__KdF1::Output, Error = __KdF0::Error>,
        __KdF2::Output: __kd::SplitTape,
    {
        type Taps = __KdTaps<
            <__KdF0::Output as __kd::SplitTape>::NoTape,
            <__KdF1::Output as __kd::SplitTape>::NoTape,
            <__KdF2::Output as __kd::SplitTape>::NoTape,
        >;
        fn try_forward_tapped(
            &self,
            __kd_x: __KdInput,
        ) -> __kd::Result<(Self::Output, Self::Taps), Self::Error> {
            let (__kd_tap_fc, __kd_x) = __kd::tap(
                __kd::Module::try_forward(&self.fc, __kd_x)?,
            );
            let (__kd_tap_fc2, __kd_x) = __kd::tap(
                __kd::Module::try_forward(&self.fc2, __kd_x)?,
            );
            let (__kd_tap_head, __kd_x) = __kd::tap(
                __kd::Module::try_forward(&self.head, __kd_x)?,
            );
            __kd::Result::Ok((
                __kd_x,
                __KdTaps {
                    fc: __kd_tap_fc,
                    fc2: __kd_tap_fc2,
                    head: __kd_tap_head,
                },
            ))
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1, __KdF2> __kd::TappedModuleMut<__KdInput>
    for __KdBuilt<__KdF0, __KdF1, __KdF2>
    where
        __KdF0: __kd::ModuleMut<__KdInput>,
        __KdF0::Output: __kd::SplitTape,
        __KdF1: __kd::ModuleMut<__KdF0::Output, Error = __KdF0::Error>,
        __KdF1::Output: __kd::SplitTape,
        __KdF2: __kd::ModuleMut<__KdF1::Output, Error = __KdF0::Error>,
        __KdF2::Output: __kd::SplitTape,
    {
        type Taps = __KdTaps<
            <__KdF0::Output as __kd::SplitTape>::NoTape,
            <__KdF1::Output as __kd::SplitTape>::NoTape,
            <__KdF2::Output as __kd::SplitTape>::NoTape,
        >;
        fn try_forward_tapped_mut(
            &mut self,
            __kd_x: __KdInput,
        ) -> __kd::Result<(Self::Output, Self::Taps), Self::Error> {
            let (__kd_tap_fc, __kd_x) = __kd::tap(
                __kd::ModuleMut::try_forward_mut(&mut self.fc, __kd_x)?,
            );
            let (__kd_tap_fc2, __kd_x) = __kd::tap(
                __kd::ModuleMut::try_forward_mut(&mut self.fc2, __kd_x)?,
            );
            let (__kd_tap_head, __kd_x) = __kd::tap(
                __kd::ModuleMut::try_forward_mut(&mut self.head, __kd_x)?,
            );
            __kd::Result::Ok((
                __kd_x,
                __KdTaps {
                    fc: __kd_tap_fc,
                    fc2: __kd_tap_fc2,
                    head: __kd_tap_head,
                },
            ))
        }
    }
};
#[allow(non_camel_case_types, clippy::type_complexity, clippy::unnecessary_cast)]
const _: () = {
    use ::kd_core::__private as __kd;
    const _: () = {
        __kd::require_layer::<Linear<4, 3>>();
        __kd::require_layer::<Linear<3, 3>>();
        __kd::require_layer::<Linear<3, 2>>();
        const CHAIN: &[__kd::LayerShape] = <Student as __kd::ModelLayers>::SHAPES;
        const INPUT: __kd::Flow = __kd::Flow::vector(4usize);
        const _: () = {
            const FLOW: __kd::Flow = __kd::flow_after(CHAIN, 0usize, INPUT);
            const TAKES: __kd::Takes = CHAIN[0usize].takes;
            __kd::require_takes::<
                <Student as __kd::LayerMarker<1usize>>::Name,
                <Student as __kd::LayerMarker<0usize>>::Name,
                { __kd::rank_fits(TAKES, FLOW) },
                { __kd::features_fit(TAKES, FLOW) },
                { __kd::map_features_fit(TAKES, FLOW) },
                { __kd::channels_fit(TAKES, FLOW) },
                { __kd::values_fit(TAKES, FLOW) },
                { __kd::wanted(TAKES) },
                { FLOW.count_or_zero() },
                { FLOW.size.0 },
                { FLOW.size.1 },
                { FLOW.values() },
            >();
        };
        const _: () = {
            const FLOW: __kd::Flow = __kd::flow_after(CHAIN, 1usize, INPUT);
            const TAKES: __kd::Takes = CHAIN[1usize].takes;
            __kd::require_takes::<
                <Student as __kd::LayerMarker<2usize>>::Name,
                <Student as __kd::LayerMarker<1usize>>::Name,
                { __kd::rank_fits(TAKES, FLOW) },
                { __kd::features_fit(TAKES, FLOW) },
                { __kd::map_features_fit(TAKES, FLOW) },
                { __kd::channels_fit(TAKES, FLOW) },
                { __kd::values_fit(TAKES, FLOW) },
                { __kd::wanted(TAKES) },
                { FLOW.count_or_zero() },
                { FLOW.size.0 },
                { FLOW.size.1 },
                { FLOW.values() },
            >();
        };
        const _: () = {
            const FLOW: __kd::Flow = __kd::flow_after(CHAIN, 2usize, INPUT);
            const TAKES: __kd::Takes = CHAIN[2usize].takes;
            __kd::require_takes::<
                <Student as __kd::LayerMarker<3usize>>::Name,
                <Student as __kd::LayerMarker<2usize>>::Name,
                { __kd::rank_fits(TAKES, FLOW) },
                { __kd::features_fit(TAKES, FLOW) },
                { __kd::map_features_fit(TAKES, FLOW) },
                { __kd::channels_fit(TAKES, FLOW) },
                { __kd::values_fit(TAKES, FLOW) },
                { __kd::wanted(TAKES) },
                { FLOW.count_or_zero() },
                { FLOW.size.0 },
                { FLOW.size.1 },
                { FLOW.values() },
            >();
        };
        const _: () = {
            const SHAPES: &[__kd::LayerShape] = <Wide as __kd::ModelLayers>::SHAPES;
            const AT: usize = __kd::first_misfit(SHAPES, INPUT);
            const THIS: usize = if AT < SHAPES.len() { AT + 1 } else { SHAPES.len() };
            const FLOW: __kd::Flow = __kd::flow_after(SHAPES, THIS - 1, INPUT);
            const TAKES: __kd::Takes = SHAPES[THIS - 1].takes;
            __kd::require_takes::<
                <Wide as __kd::LayerMarker<THIS>>::Name,
                <Wide as __kd::LayerMarker<{ THIS - 1 }>>::Name,
                { __kd::rank_fits(TAKES, FLOW) },
                { __kd::features_fit(TAKES, FLOW) },
                { __kd::map_features_fit(TAKES, FLOW) },
                { __kd::channels_fit(TAKES, FLOW) },
                { __kd::values_fit(TAKES, FLOW) },
                { __kd::wanted(TAKES) },
                { FLOW.count_or_zero() },
                { FLOW.size.0 },
                { FLOW.size.1 },
                { FLOW.values() },
            >();
        };
        const _: () = {
            const SHAPES: &[__kd::LayerShape] = <Deep as __kd::ModelLayers>::SHAPES;
            const AT: usize = __kd::first_misfit(SHAPES, INPUT);
            const THIS: usize = if AT < SHAPES.len() { AT + 1 } else { SHAPES.len() };
            const FLOW: __kd::Flow = __kd::flow_after(SHAPES, THIS - 1, INPUT);
            const TAKES: __kd::Takes = SHAPES[THIS - 1].takes;
            __kd::require_takes::<
                <Deep as __kd::LayerMarker<THIS>>::Name,
                <Deep as __kd::LayerMarker<{ THIS - 1 }>>::Name,
                { __kd::rank_fits(TAKES, FLOW) },
                { __kd::features_fit(TAKES, FLOW) },
                { __kd::map_features_fit(TAKES, FLOW) },
                { __kd::channels_fit(TAKES, FLOW) },
                { __kd::values_fit(TAKES, FLOW) },
                { __kd::wanted(TAKES) },
                { FLOW.count_or_zero() },
                { FLOW.size.0 },
                { FLOW.size.1 },
                { FLOW.values() },
            >();
        };
    };
    #[automatically_derived]
    impl __kd::Distill for Student {
        type Dtype = f32;
        type Teacher = (Wide, Deep);
        type TeacherModel = __kd::Built<(Wide, Deep), f32>;
        type Model = __kd::Distiller<
            __kd::Built<Student, f32>,
            __kd::Built<
                (
                    <Linear<
                        4,
                        3,
                    > as __kd::Width>::Adapter<
                        { <Linear<4, 3> as __kd::Width>::WIDTH },
                        {
                            <<Wide as __kd::ModelField<
                                (__kd::Char<'f'>, __kd::Char<'c'>),
                            >>::Layer as __kd::Width>::WIDTH
                        },
                    >,
                    <Linear<
                        3,
                        3,
                    > as __kd::Width>::Adapter<
                        { <Linear<3, 3> as __kd::Width>::WIDTH },
                        {
                            <<Deep as __kd::ModelField<
                                (__kd::Char<'f'>, __kd::Char<'c'>, __kd::Char<'2'>),
                            >>::Layer as __kd::Width>::WIDTH
                        },
                    >,
                ),
                f32,
            >,
        >;
        type Input = __kd::Tensor<(usize, __kd::Const<4usize>), f32, __kd::Cpu>;
        fn build_distiller(device: &__kd::Cpu) -> Self::Model {
            __kd::Distiller {
                student: __kd::DeviceBuildExt::build_module::<Student, f32>(device),
                adapters: __kd::DeviceBuildExt::build_module::<
                    (
                        <Linear<
                            4,
                            3,
                        > as __kd::Width>::Adapter<
                            { <Linear<4, 3> as __kd::Width>::WIDTH },
                            {
                                <<Wide as __kd::ModelField<
                                    (__kd::Char<'f'>, __kd::Char<'c'>),
                                >>::Layer as __kd::Width>::WIDTH
                            },
                        >,
                        <Linear<
                            3,
                            3,
                        > as __kd::Width>::Adapter<
                            { <Linear<3, 3> as __kd::Width>::WIDTH },
                            {
                                <<Deep as __kd::ModelField<
                                    (__kd::Char<'f'>, __kd::Char<'c'>, __kd::Char<'2'>),
                                >>::Layer as __kd::Width>::WIDTH
                            },
                        >,
                    ),
                    f32,
                >(device),
            }
        }
        fn settings() -> __kd::Settings {
            __kd::Settings {
                kd: __kd::loss::KdConfig {
                    temperature: __kd::weights::TEMPERATURE,
                    ce_weight: __kd::weights::CE_WEIGHT,
                    kd_weight: __kd::weights::KD_WEIGHT,
                    divergence: __kd::loss::Divergence::ForwardKl,
                },
                terms: ::std::vec![
                    ("hint.fc", __kd::weights::HINT * 1f64), ("hint.fc2",
                    __kd::weights::HINT * 1f64)
                ],
                teachers: ::std::vec![("wide", 2f64), ("deep", 1f64)],
            }
        }
        fn distill_loss_with(
            distiller: &mut Self::Model,
            teacher: &Self::TeacherModel,
            input: Self::Input,
            targets: &[usize],
            grads: __kd::Gradients<f32, __kd::Cpu>,
            settings: &__kd::Settings,
        ) -> __kd::Result<
            __kd::loss::LossTerms<f32, __kd::Cpu, __kd::OwnedTape<f32, __kd::Cpu>>,
            __kd::LossError,
        > {
            let (__kd_teacher_logits_0, __kd_teacher_taps_0) = __kd::expect_forward(
                "teacher `wide`",
                __kd::TappedModule::try_forward_tapped(&teacher.0, input.clone()),
            );
            let (__kd_teacher_logits_1, __kd_teacher_taps_1) = __kd::expect_forward(
                "teacher `deep`",
                __kd::TappedModule::try_forward_tapped(&teacher.1, input.clone()),
            );
            let (__kd_student_logits, __kd_student_taps) = __kd::expect_forward(
                "student",
                __kd::TappedModuleMut::try_forward_tapped_mut(
                    &mut distiller.student,
                    __kd::trace_input(input.clone(), grads),
                ),
            );
            let _ = (&__kd_teacher_taps_0, &__kd_teacher_taps_1, &__kd_student_taps);
            let __kd_terms = __kd::loss::multi_teacher_kd_with_ce_loss(
                __kd_student_logits,
                &[
                    {
                        let __kd_logits = __kd_teacher_logits_0;
                        __kd::SameLogits::<
                            <__kd::Built<
                                Student,
                                f32,
                            > as __kd::Module<
                                __kd::Tensor<(usize, __kd::Const<4usize>), f32, __kd::Cpu>,
                            >>::Output,
                        >::into_student_logits(__kd_logits)
                    },
                    {
                        let __kd_logits = __kd_teacher_logits_1;
                        __kd::SameLogits::<
                            <__kd::Built<
                                Student,
                                f32,
                            > as __kd::Module<
                                __kd::Tensor<(usize, __kd::Const<4usize>), f32, __kd::Cpu>,
                            >>::Output,
                        >::into_student_logits(__kd_logits)
                    },
                ],
                &[
                    ("kd.wide", settings.teachers[0].1),
                    ("kd.deep", settings.teachers[1].1),
                ],
                targets,
                &settings.kd,
                __kd::loss::Ensemble::Each,
            )?;
            let __kd_terms = __kd_terms
                .add(
                    "hint.fc",
                    settings.terms[0].1,
                    __kd::loss::hint_loss(
                        __kd::Module::forward(
                            &distiller.adapters.0,
                            __kd::Tensor::retaped::<
                                __kd::OwnedTape<f32, __kd::Cpu>,
                            >(&__kd_student_taps.fc),
                        ),
                        __kd_teacher_taps_0.fc.clone(),
                    )?,
                );
            let __kd_terms = __kd_terms
                .add(
                    "hint.fc2",
                    settings.terms[1].1,
                    __kd::loss::hint_loss(
                        __kd::Module::forward(
                            &distiller.adapters.1,
                            __kd::Tensor::retaped::<
                                __kd::OwnedTape<f32, __kd::Cpu>,
                            >(&__kd_student_taps.fc2),
                        ),
                        __kd_teacher_taps_1.fc2.clone(),
                    )?,
                );
            __kd::Result::Ok(__kd_terms)
        }
    }
};
