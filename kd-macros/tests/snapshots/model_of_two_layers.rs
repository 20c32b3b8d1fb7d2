#[allow(dead_code)]
struct Teacher {
    fc: Linear<4, 8>,
    head: Linear<8, 2>,
}
#[allow(non_camel_case_types, clippy::type_complexity)]
const _: () = {
    use ::kd_core::__private as __kd;
    #[automatically_derived]
    impl __kd::ModelLayers for Teacher {
        type Layers = (Linear<4, 8>, (Linear<8, 2>, ()));
        const SHAPES: &'static [__kd::LayerShape] = {
            use __kd::UnknownShape as _;
            &[<__kd::ShapeOf<Linear<4, 8>>>::SHAPE, <__kd::ShapeOf<Linear<8, 2>>>::SHAPE]
        };
    }
    pub struct Teacher_input;
    pub struct Teacher_fc;
    pub struct Teacher_head;
    #[automatically_derived]
    impl __kd::LayerMarker<0> for Teacher {
        type Name = Teacher_input;
    }
    #[automatically_derived]
    impl __kd::LayerMarker<1usize> for Teacher {
        type Name = Teacher_fc;
    }
    #[automatically_derived]
    impl __kd::LayerMarker<2usize> for Teacher {
        type Name = Teacher_head;
    }
    #[automatically_derived]
    impl __kd::Spatial for Teacher
    where
        for<'__kd> (Linear<4, 8>, (Linear<8, 2>, ())): __kd::SpatialChain,
    {
        const EFFECT: __kd::SpatialEffect = __kd::SpatialEffect::Chain(
            <(Linear<4, 8>, (Linear<8, 2>, ())) as __kd::SpatialChain>::EFFECTS,
        );
        const TAKES: __kd::Takes = <(
            Linear<4, 8>,
            (Linear<8, 2>, ()),
        ) as __kd::SpatialChain>::TAKES;
        const GIVES: __kd::Gives = <(
            Linear<4, 8>,
            (Linear<8, 2>, ()),
        ) as __kd::SpatialChain>::GIVES;
    }
    #[automatically_derived]
    impl __kd::ModelField<(__kd::Char<'f'>, __kd::Char<'c'>)> for Teacher {
        type Layer = Linear<4, 8>;
        const POSITION: usize = 0usize;
    }
    #[automatically_derived]
    impl __kd::ModelField<
        (__kd::Char<'h'>, __kd::Char<'e'>, __kd::Char<'a'>, __kd::Char<'d'>),
    > for Teacher {
        type Layer = Linear<8, 2>;
        const POSITION: usize = 1usize;
    }
    /// The layers of the model, built on a device.
    #[derive(Debug, Clone)]
    pub struct __KdBuilt<__KdF0, __KdF1> {
        pub fc: __KdF0,
        pub head: __KdF1,
    }
    /// Every layer's output, untaped.
    #[derive(Debug, Clone)]
    pub struct __KdTaps<__KdF0, __KdF1> {
        pub fc: __KdF0,
        pub head: __KdF1,
    }
    #[automatically_derived]
    impl<
        __KdD: __kd::Device<__KdE>,
        __KdE: __kd::Dtype,
    > __kd::BuildOnDevice<__KdD, __KdE> for Teacher
    where
        Linear<4, 8>: __kd::BuildOnDevice<__KdD, __KdE>,
        Linear<8, 2>: __kd::BuildOnDevice<__KdD, __KdE>,
        __KdBuilt<
            <Linear<4, 8> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
            <Linear<8, 2> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
        >: __kd::BuildModule<__KdD, __KdE>,
    {
        type Built = __KdBuilt<
            <Linear<4, 8> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
            <Linear<8, 2> as __kd::BuildOnDevice<__KdD, __KdE>>::Built,
        >;
    }
    #[automatically_derived]
    impl<
        __KdE: __kd::Dtype,
        __KdD: __kd::Device<__KdE>,
        __KdF0: __kd::TensorCollection<__KdE, __KdD>,
        __KdF1: __kd::TensorCollection<__KdE, __KdD>,
    > __kd::TensorCollection<__KdE, __KdD> for __KdBuilt<__KdF0, __KdF1> {
        type To<__KdE2: __kd::Dtype, __KdD2: __kd::Device<__KdE2>> = __KdBuilt<
            __KdF0::To<__KdE2, __KdD2>,
            __KdF1::To<__KdE2, __KdD2>,
        >;
        fn iter_tensors<__KdV: __kd::ModuleVisitor<Self, __KdE, __KdD>>(
            visitor: &mut __KdV,
        ) -> __kd::Result<__kd::Option<Self::To<__KdV::E2, __KdV::D2>>, __KdV::Err> {
            visitor
                .visit_fields(
                    (
                        Self::module(::core::stringify!(fc), |s| &s.fc, |s| &mut s.fc),
                        Self::module(
                            ::core::stringify!(head),
                            |s| &s.head,
                            |s| &mut s.head,
                        ),
                    ),
                    |(fc, head)| __KdBuilt { fc, head },
                )
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1> __kd::Module<__KdInput> for __KdBuilt<__KdF0, __KdF1>
    where
        __KdF0: __kd::Module<__KdInput>,
        __KdF1: __kd::Module<__KdF0::Output, Error = __KdF0::Error>,
    {
        type Output = __KdF1::Output;
        type Error = __KdF0::Error;
        fn try_forward(
            &self,
            __kd_x: __KdInput,
        ) -> __kd::Result<Self::Output, Self::Error> {
            let __kd_x = __kd::Module::try_forward(&self.fc, __kd_x)?;
            let __kd_x = __kd::Module::try_forward(&self.head, __kd_x)?;
            __kd::Result::Ok(__kd_x)
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1> __kd::ModuleMut<__KdInput>
    for __KdBuilt<__KdF0, __KdF1>
    where
        __KdF0: __kd::ModuleMut<__KdInput>,
        __KdF1: __kd::ModuleMut<__KdF0::Output, Error = __KdF0::Error>,
    {
        type Output = __KdF1::Output;
        type Error = __KdF0::Error;
        fn try_forward_mut(
            &mut self,
            __kd_x: __KdInput,
        ) -> __kd::Result<Self::Output, Self::Error> {
            let __kd_x = __kd::ModuleMut::try_forward_mut(&mut self.fc, __kd_x)?;
            let __kd_x = __kd::ModuleMut::try_forward_mut(&mut self.head, __kd_x)?;
            __kd::Result::Ok(__kd_x)
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1> __kd::TappedModule<__KdInput>
    for __KdBuilt<__KdF0, __KdF1>
    where
        __KdF0: __kd::Module<__KdInput>,
        __KdF0::Output: __kd::SplitTape,
        __KdF1: __kd::Module<__KdF0::Output, Error = __KdF0::Error>,
        __KdF1::Output: __kd::SplitTape,
    {
        type Taps = __KdTaps<
            <__KdF0::Output as __kd::SplitTape>::NoTape,
            <__KdF1::Output as __kd::SplitTape>::NoTape,
        >;
        fn try_forward_tapped(
            &self,
            __kd_x: __KdInput,
        ) -> __kd::Result<(Self::Output, Self::Taps), Self::Error> {
            let (__kd_tap_fc, __kd_x) = __kd::tap(
                __kd::Module::try_forward(&self.fc, __kd_x)?,
            );
            let (__kd_tap_head, __kd_x) = __kd::tap(
                __kd::Module::try_forward(&self.head, __kd_x)?,
            );
            __kd::Result::Ok((
                __kd_x,
                __KdTaps {
                    fc: __kd_tap_fc,
                    head: __kd_tap_head,
                },
            ))
        }
    }
    #[automatically_derived]
    impl<__KdInput, __KdF0, __KdF1> __kd::TappedModuleMut<__KdInput>
    for __KdBuilt<__KdF0, __KdF1>
    where
        __KdF0: __kd::ModuleMut<__KdInput>,
        __KdF0::Output: __kd::SplitTape,
        __KdF1: __kd::ModuleMut<__KdF0::Output, Error = __KdF0::Error>,
        __KdF1::Output: __kd::SplitTape,
    {
        type Taps = __KdTaps<
            <__KdF0::Output as __kd::SplitTape>::NoTape,
            <__KdF1::Output as __kd::SplitTape>::NoTape,
        >;
        fn try_forward_tapped_mut(
            &mut self,
            __kd_x: __KdInput,
        ) -> __kd::Result<(Self::Output, Self::Taps), Self::Error> {
            let (__kd_tap_fc, __kd_x) = __kd::tap(
                __kd::ModuleMut::try_forward_mut(&mut self.fc, __kd_x)?,
            );
            let (__kd_tap_head, __kd_x) = __kd::tap(
                __kd::ModuleMut::try_forward_mut(&mut self.head, __kd_x)?,
            );
            __kd::Result::Ok((
                __kd_x,
                __KdTaps {
                    fc: __kd_tap_fc,
                    head: __kd_tap_head,
                },
            ))
        }
    }
};
