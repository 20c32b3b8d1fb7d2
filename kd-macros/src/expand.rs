//! Code generation. The generated code only wires types to kd-core: every loss is a call into
//! `::kd_core::__private::loss`, every trait an item of `::kd_core::__private`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::ast::{Field, Model, Pair, Student};
use crate::attr::{self, Attention, Divergence, Features, Kind, Number, Relations, Sp};
use crate::check;
use crate::ctxt::Ctxt;

/// `#[model]`: the struct, marked as a type-only builder, and its model impls.
pub fn expand_model(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut input: syn::DeriveInput = match syn::parse2(item) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    let extra = refuse_second_attribute(&mut input, "model");
    let cx = Ctxt::new();
    if !args.is_empty() {
        cx.error_spanned_by(
            &args,
            "#[model] takes no arguments; distillation settings go in #[distill(...)] on the student",
        );
    }
    let model = Model::from_ast(&cx, &input, "#[model]");
    for field in model.iter().flat_map(|m| &m.fields) {
        if let Some(span) = field.attr.pair_span {
            cx.error_at(
                span,
                "`pair` belongs on the fields of a #[distill(...)] student, not on a #[model] struct",
            );
        }
    }
    let generated = match cx.check() {
        Ok(()) => model.map(|m| model_impls(&m, &default_crate())).unwrap_or_default(),
        Err(error) => error.into_compile_error(),
    };
    finish_struct(&mut input);
    quote!(#input #extra #generated)
}

/// `#[distill(...)]`: the struct itself (without the field attributes), its model impls and
/// its `Distill` impl; on a mistake, the struct, the model impls when they can be made, and the
/// errors, so one mistake gives one message.
pub fn expand_distill(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut input: syn::DeriveInput = match syn::parse2(item) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    let extra = refuse_second_attribute(&mut input, "distill");
    let cx = Ctxt::new();
    let attr = attr::Distill::from_tokens(&cx, args);
    let krate = attr.krate.clone().unwrap_or_else(default_crate);
    let parsed = Student::from_ast(&cx, attr, &input);
    if let Some(student) = &parsed {
        check::check(&cx, student);
    }
    let generated = match (cx.check(), parsed) {
        (Ok(()), Some(student)) => {
            let model = model_impls(&student.model, &krate);
            let distill = distill_impl(&student, &krate);
            quote!(#model #distill)
        }
        (result, parsed) => {
            let errors = result.err().map(syn::Error::into_compile_error);
            let fallback = parsed.map(|s| {
                let model = model_impls(&s.model, &krate);
                let stub = distill_stub(&s, &krate);
                quote!(#model #stub)
            });
            quote!(#errors #fallback)
        }
    };
    finish_struct(&mut input);
    quote!(#input #extra #generated)
}

/// A second kd attribute on the same struct (`#[model]` with `#[distill]`, or two
/// `#[distill]`): an error at it, and it is removed so that it does not run as well. The
/// struct's own expansion goes on, so this is the only error it causes.
fn refuse_second_attribute(input: &mut syn::DeriveInput, this: &str) -> TokenStream {
    let cx = Ctxt::new();
    input.attrs.retain(|attribute| {
        let name = attribute.path().segments.last().map(|s| s.ident.to_string());
        let message = match (this, name.as_deref()) {
            ("model", Some("model")) => "a second `#[model]` on one struct; write it once",
            ("model", Some("distill")) | ("distill", Some("model")) => {
                "`#[model]` and `#[distill(...)]` on one struct: write `#[distill(...)]` alone, which generates everything `#[model]` does"
            }
            ("distill", Some("distill")) => "a second `#[distill(...)]` on one struct: put every setting in one attribute",
            _ => return true,
        };
        cx.error_spanned_by(attribute, message);
        false
    });
    cx.check().err().map(syn::Error::into_compile_error).unwrap_or_default()
}

fn default_crate() -> syn::Path {
    syn::parse_quote!(::kd_core)
}

/// Removes the field attributes the macro consumed, and allows the dead code of a struct that
/// is only ever used as a type (a builder: its layer fields are never read).
fn finish_struct(input: &mut syn::DeriveInput) {
    input.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
    if let syn::Data::Struct(data) = &mut input.data {
        for field in data.fields.iter_mut() {
            field.attrs.retain(|a| !a.path().is_ident("distill"));
        }
    }
}

/// `tokens` with every span set to `span`: an error about the teacher's field is then reported
/// at the field named in `pair = ...`, not at the teacher's path.
fn respanned(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner = proc_macro2::Group::new(group.delimiter(), respanned(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            }
            tree.set_span(span);
            tree
        })
        .collect()
}

/// A field name as a type for `ModelField`: `fc1` is `(Char<'f'>, Char<'c'>, Char<'1'>)`.
fn field_name_type(field: &syn::Ident) -> TokenStream {
    let name = field.to_string();
    let chars = name.trim_start_matches("r#").chars().map(proc_macro2::Literal::character);
    quote!((#(__kd::Char<#chars>,)*))
}

/// Nests items into tuples of at most six, the largest dfdx implements its traits for.
fn nested_tuple(items: &[TokenStream]) -> TokenStream {
    if items.len() <= 6 {
        quote!((#(#items,)*))
    } else {
        let (head, rest) = items.split_at(5);
        let rest = nested_tuple(rest);
        quote!((#(#head,)* #rest,))
    }
}

/// A field's layer as the shape checks see it: its type, or `KeepsShape` for a field marked
/// `#[distill(keeps_shape)]`.
fn chain_layer(field: &Field<'_>) -> TokenStream {
    if field.attr.keeps_shape {
        quote!(__kd::KeepsShape)
    } else {
        let ty = field.ty;
        quote!(#ty)
    }
}

/// `BuildOnDevice`, `TensorCollection`, `Module`, `ModuleMut` and the tapped forwards of a
/// model struct, plus the trait exposing its field types.
fn model_impls(model: &Model<'_>, krate: &syn::Path) -> TokenStream {
    let ident = model.ident;
    let names: Vec<&syn::Ident> = model.fields.iter().map(|f| f.ident).collect();
    let tys: Vec<&syn::Type> = model.fields.iter().map(|f| f.ty).collect();
    // The layers as nested pairs `(L0, (L1, (..., ())))`: any depth chains (`SpatialChain`).
    let layers = model.fields.iter().rev().fold(quote!(()), |rest, f| {
        let layer = chain_layer(f);
        quote!((#layer, #rest))
    });
    let params: Vec<syn::Ident> = (0..names.len()).map(|i| format_ident!("__KdF{}", i)).collect();
    let positions = 0..names.len();
    let shapes = model.fields.iter().map(|f| {
        let layer = chain_layer(f);
        quote_spanned!(f.ty.span()=> <__kd::ShapeOf<#layer>>::SHAPE)
    });
    let input_marker = format_ident!("{}_input", ident);
    let markers: Vec<syn::Ident> = model
        .fields
        .iter()
        .map(|f| format_ident!("{}_{}", ident, f.ident.unraw()))
        .collect();
    let marker_indices = 1..=names.len();
    let name_types: Vec<TokenStream> = names.iter().map(|n| field_name_type(n)).collect();
    let first = &params[0];
    let last = &params[params.len() - 1];

    let visits: Vec<TokenStream> = names
        .iter()
        .map(|n| quote!(Self::module(::core::stringify!(#n), |s| &s.#n, |s| &mut s.#n)))
        .collect();
    let visit_tuple = nested_tuple(&visits);
    let pattern = nested_tuple(&names.iter().map(|n| quote!(#n)).collect::<Vec<_>>());

    // Each layer takes the previous one's output: P0: Module<Input>, P1: Module<P0::Output>, ...
    let chain = |module: TokenStream, extra: Option<TokenStream>| -> Vec<TokenStream> {
        params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let input = if i == 0 {
                    quote!(__KdInput)
                } else {
                    let prev = &params[i - 1];
                    quote!(#prev::Output)
                };
                let error = if i == 0 { quote!() } else { quote!(Error = #first::Error) };
                let split = extra.as_ref().map(|bound| quote!(#p::Output: #bound,));
                quote!(#p: #module<#input, #error>, #split)
            })
            .collect()
    };
    let module_bounds = chain(quote!(__kd::Module), None);
    let module_mut_bounds = chain(quote!(__kd::ModuleMut), None);
    let tapped_bounds = chain(quote!(__kd::Module), Some(quote!(__kd::SplitTape)));
    let tapped_mut_bounds = chain(quote!(__kd::ModuleMut), Some(quote!(__kd::SplitTape)));
    let tap_vars: Vec<syn::Ident> = names.iter().map(|n| format_ident!("__kd_tap_{}", n)).collect();

    quote! {

        #[allow(non_camel_case_types, clippy::type_complexity)]
        const _: () = {
            use #krate::__private as __kd;

            #[automatically_derived]
            impl __kd::ModelLayers for #ident {
                type Layers = #layers;
                const SHAPES: &'static [__kd::LayerShape] = {
                    use __kd::UnknownShape as _;
                    &[#(#shapes),*]
                };
            }

            // Markers named `Model_field` for the layer-chain check's messages; they print as
            // such only when no other type shares the name.
            pub struct #input_marker;
            #(pub struct #markers;)*
            #[automatically_derived]
            impl __kd::LayerMarker<0> for #ident {
                type Name = #input_marker;
            }
            #(
                #[automatically_derived]
                impl __kd::LayerMarker<#marker_indices> for #ident {
                    type Name = #markers;
                }
            )*

            // A model is a layer of another model; `for<'__kd>` defers the bound, so a model
            // with a layer kd has no shapes for is simply not `Spatial`.
            #[automatically_derived]
            impl __kd::Spatial for #ident
            where
                for<'__kd> #layers: __kd::SpatialChain,
            {
                const EFFECT: __kd::SpatialEffect = __kd::SpatialEffect::Chain(<#layers as __kd::SpatialChain>::EFFECTS);
                const TAKES: __kd::Takes = <#layers as __kd::SpatialChain>::TAKES;
                const GIVES: __kd::Gives = <#layers as __kd::SpatialChain>::GIVES;
            }
            #(
                #[automatically_derived]
                impl __kd::ModelField<#name_types> for #ident {
                    type Layer = #tys;
                    const POSITION: usize = #positions;
                }
            )*

            /// The layers of the model, built on a device.
            #[derive(Debug, Clone)]
            pub struct __KdBuilt<#(#params),*> {
                #(pub #names: #params,)*
            }

            /// Every layer's output, untaped.
            #[derive(Debug, Clone)]
            pub struct __KdTaps<#(#params),*> {
                #(pub #names: #params,)*
            }

            #[automatically_derived]
            impl<__KdD: __kd::Device<__KdE>, __KdE: __kd::Dtype> __kd::BuildOnDevice<__KdD, __KdE> for #ident
            where
                #(#tys: __kd::BuildOnDevice<__KdD, __KdE>,)*
                __KdBuilt<#(<#tys as __kd::BuildOnDevice<__KdD, __KdE>>::Built),*>: __kd::BuildModule<__KdD, __KdE>,
            {
                type Built = __KdBuilt<#(<#tys as __kd::BuildOnDevice<__KdD, __KdE>>::Built),*>;
            }

            #[automatically_derived]
            impl<__KdE: __kd::Dtype, __KdD: __kd::Device<__KdE>, #(#params: __kd::TensorCollection<__KdE, __KdD>),*>
                __kd::TensorCollection<__KdE, __KdD> for __KdBuilt<#(#params),*>
            {
                type To<__KdE2: __kd::Dtype, __KdD2: __kd::Device<__KdE2>> = __KdBuilt<#(#params::To<__KdE2, __KdD2>),*>;

                fn iter_tensors<__KdV: __kd::ModuleVisitor<Self, __KdE, __KdD>>(
                    visitor: &mut __KdV,
                ) -> __kd::Result<__kd::Option<Self::To<__KdV::E2, __KdV::D2>>, __KdV::Err> {
                    visitor.visit_fields(#visit_tuple, |#pattern| __KdBuilt { #(#names,)* })
                }
            }

            #[automatically_derived]
            impl<__KdInput, #(#params),*> __kd::Module<__KdInput> for __KdBuilt<#(#params),*>
            where
                #(#module_bounds)*
            {
                type Output = #last::Output;
                type Error = #first::Error;

                fn try_forward(&self, __kd_x: __KdInput) -> __kd::Result<Self::Output, Self::Error> {
                    #(let __kd_x = __kd::Module::try_forward(&self.#names, __kd_x)?;)*
                    __kd::Result::Ok(__kd_x)
                }
            }

            #[automatically_derived]
            impl<__KdInput, #(#params),*> __kd::ModuleMut<__KdInput> for __KdBuilt<#(#params),*>
            where
                #(#module_mut_bounds)*
            {
                type Output = #last::Output;
                type Error = #first::Error;

                fn try_forward_mut(&mut self, __kd_x: __KdInput) -> __kd::Result<Self::Output, Self::Error> {
                    #(let __kd_x = __kd::ModuleMut::try_forward_mut(&mut self.#names, __kd_x)?;)*
                    __kd::Result::Ok(__kd_x)
                }
            }

            #[automatically_derived]
            impl<__KdInput, #(#params),*> __kd::TappedModule<__KdInput> for __KdBuilt<#(#params),*>
            where
                #(#tapped_bounds)*
            {
                type Taps = __KdTaps<#(<#params::Output as __kd::SplitTape>::NoTape),*>;

                fn try_forward_tapped(&self, __kd_x: __KdInput) -> __kd::Result<(Self::Output, Self::Taps), Self::Error> {
                    #(let (#tap_vars, __kd_x) = __kd::tap(__kd::Module::try_forward(&self.#names, __kd_x)?);)*
                    __kd::Result::Ok((__kd_x, __KdTaps { #(#names: #tap_vars,)* }))
                }
            }

            #[automatically_derived]
            impl<__KdInput, #(#params),*> __kd::TappedModuleMut<__KdInput> for __KdBuilt<#(#params),*>
            where
                #(#tapped_mut_bounds)*
            {
                type Taps = __KdTaps<#(<#params::Output as __kd::SplitTape>::NoTape),*>;

                fn try_forward_tapped_mut(&mut self, __kd_x: __KdInput) -> __kd::Result<(Self::Output, Self::Taps), Self::Error> {
                    #(let (#tap_vars, __kd_x) = __kd::tap(__kd::ModuleMut::try_forward_mut(&mut self.#names, __kd_x)?);)*
                    __kd::Result::Ok((__kd_x, __KdTaps { #(#names: #tap_vars,)* }))
                }
            }
        };
    }
}

/// Compile-time checks that each pair's maps can be aligned, from `input = [C, H, W]`: equal
/// sizes for a hint or activation boundary (1×1 adapter), one map no smaller in both
/// dimensions for attention and NST (adaptive pooling). A failed check names both fields (the
/// marker type) and both sizes.
fn size_checks(student: &Student<'_>) -> TokenStream {
    let (height, width) = match student.attr.input.as_ref().map(|i| i.value.as_slice()) {
        Some([_, h, w]) => (*h, *w),
        _ => return TokenStream::new(),
    };
    let fields = &student.model.fields;
    let checks = student.pairs.iter().filter_map(|pair| {
        let pooling = alignment(student, pair)?;
        let PairSite {
            marker,
            position,
            teacher_field,
            teacher_chain,
        } = PairSite::of(student, pair);
        let chain = fields.iter().take(position).map(|f| {
            let layer = chain_layer(f);
            quote_spanned!(f.ty.span()=> <#layer as __kd::Spatial>::EFFECT)
        });
        Some(quote_spanned! {pair.student.span()=>
            const _: () = {
                const STUDENT: (usize, usize) = __kd::size_after(&[#(#chain),*], #position, (#height, #width));
                const TEACHER: (usize, usize) = __kd::size_after_chain(#teacher_chain, #teacher_field::POSITION + 1, (#height, #width));
                __kd::require_aligned::<#marker, { __kd::alignable(STUDENT, TEACHER, #pooling) }, { STUDENT.0 }, { STUDENT.1 }, { TEACHER.0 }, { TEACHER.1 }>();
            };
        })
    });
    quote!(#(#checks)*)
}

/// Whether `pair`'s maps must align for its kinds: `Some(false)` for equal sizes (a hint or an
/// activation boundary, whose adapter is 1×1), `Some(true)` for one map no smaller in both
/// dimensions (attention and NST pool the larger), `None` when no kind compares its maps.
fn alignment(student: &Student<'_>, pair: &Pair<'_>) -> Option<bool> {
    let kinds = student.kinds_of(pair);
    let equal = kinds
        .iter()
        .any(|m| matches!(m.kind, Kind::Features(Features::Hint) | Kind::Sparsity));
    let pooled = kinds.iter().any(|m| compares_pooled_maps(&m.kind));
    (equal || pooled).then_some(!equal)
}

/// Whether `kind` compares a pair's maps after pooling the larger (NST, activation attention).
fn compares_pooled_maps(kind: &Kind) -> bool {
    matches!(kind, Kind::Features(Features::Nst) | Kind::Attention(Attention::Activation { .. }))
}

/// Whether `pair` must give maps on both sides: attention, NST and FSP compare maps.
fn needs_maps(student: &Student<'_>, pair: &Pair<'_>) -> bool {
    uses_fsp(student) || student.kinds_of(pair).iter().any(|m| compares_pooled_maps(&m.kind))
}

/// Whether the container's `match(...)` relates the pairs by FSP.
fn uses_fsp(student: &Student<'_>) -> bool {
    student
        .attr
        .matches
        .iter()
        .any(|m| matches!(m.kind, Kind::Relations(Relations::Layers)))
}

/// What the pair checks read of one pairing: its marker type (named after both fields, what a
/// failed check prints), the student field's position + 1, and the teacher field as
/// `<Teacher as ModelField<name>>` with the teacher's chain of effects, both at the teacher
/// field's span.
struct PairSite {
    marker: syn::Ident,
    position: usize,
    teacher_field: TokenStream,
    teacher_chain: TokenStream,
}

impl PairSite {
    fn of(student: &Student<'_>, pair: &Pair<'_>) -> PairSite {
        let fields = &student.model.fields;
        let t_field = &pair.teacher;
        let teacher = &student.teachers[pair.teacher_index].path;
        let name = field_name_type(t_field);
        let teacher_at_field = respanned(quote!(#teacher), t_field.span());
        PairSite {
            marker: format_ident!("student_{}_with_teacher_{}", pair.student, t_field),
            position: fields.iter().position(|f| f.ident == pair.student).unwrap_or(0) + 1,
            teacher_field: quote_spanned!(t_field.span()=> <#teacher_at_field as __kd::ModelField<#name>>),
            teacher_chain: quote_spanned!(t_field.span()=> <<#teacher as __kd::ModelLayers>::Layers as __kd::SpatialChain>::EFFECTS),
        }
    }
}

/// One marker type per pairing that a size or map check names, declared once for both (two
/// types of one name would print with their paths).
fn pair_markers(student: &Student<'_>) -> TokenStream {
    let three_d = matches!(student.attr.input.as_ref().map(|i| i.value.as_slice()), Some([_, _, _]));
    let markers = student
        .pairs
        .iter()
        .filter(|pair| (three_d && alignment(student, pair).is_some()) || needs_maps(student, pair))
        .map(|pair| {
            let marker = PairSite::of(student, pair).marker;
            quote_spanned!(pair.student.span()=> struct #marker;)
        });
    quote!(#(#markers)*)
}

/// Compile-time checks that each field takes what the field before it gives (the first one,
/// what `input = [...]` gives), one per field and spanned at its type, and that each teacher's
/// layers chain from the same input (its first misfit, spanned at the teacher's name). A
/// failed check names both fields (the `LayerMarker` types `#[model]` names after them) and
/// both counts; a field type kd knows nothing about makes the shape unknown and is not checked.
fn chain_checks(student: &Student<'_>) -> TokenStream {
    let input = match student.attr.input.as_ref().map(|i| i.value.as_slice()) {
        Some([features]) => quote!(__kd::Flow::vector(#features)),
        Some([channels, height, width]) => quote!(__kd::Flow::map(#channels, #height, #width)),
        _ => return TokenStream::new(),
    };
    let ident = student.model.ident;
    let fields = &student.model.fields;
    let checks = fields.iter().enumerate().map(|(i, field)| {
        let this = i + 1;
        let check = respanned(takes_check(&quote!(#ident), quote!(#this), quote!(#i)), field.ty.span());
        quote_spanned! {field.ty.span()=>
            const _: () = {
                const FLOW: __kd::Flow = __kd::flow_after(CHAIN, #i, INPUT);
                const TAKES: __kd::Takes = CHAIN[#i].takes;
                #check
            };
        }
    });
    let layer_checks = fields.iter().map(|f| {
        let ty = f.ty;
        quote_spanned!(ty.span()=> __kd::require_layer::<#ty>();)
    });
    let teacher_checks = student.teachers.iter().filter(|t| !t.path.is_ident(ident)).map(|t| {
        let teacher = &t.path;
        let span = teacher.span();
        let check = respanned(takes_check(&quote!(#teacher), quote!(THIS), quote!({ THIS - 1 })), span);
        quote_spanned! {span=>
            const _: () = {
                const SHAPES: &[__kd::LayerShape] = <#teacher as __kd::ModelLayers>::SHAPES;
                const AT: usize = __kd::first_misfit(SHAPES, INPUT);
                const THIS: usize = if AT < SHAPES.len() { AT + 1 } else { SHAPES.len() };
                const FLOW: __kd::Flow = __kd::flow_after(SHAPES, THIS - 1, INPUT);
                const TAKES: __kd::Takes = SHAPES[THIS - 1].takes;
                #check
            };
        }
    });
    let pair_checks = pair_map_checks(student);
    quote! {
        const _: () = {
            #(#layer_checks)*
            const CHAIN: &[__kd::LayerShape] = <#ident as __kd::ModelLayers>::SHAPES;
            const INPUT: __kd::Flow = #input;
            #(#checks)*
            #(#teacher_checks)*
            #pair_checks
        };
    }
}

/// The check that layer `this` of `model` (its `LayerMarker` index) takes `FLOW` as `TAKES`,
/// from the layer (or input) `prev`.
fn takes_check(model: &TokenStream, this: TokenStream, prev: TokenStream) -> TokenStream {
    quote! {
        __kd::require_takes::<
            <#model as __kd::LayerMarker<#this>>::Name,
            <#model as __kd::LayerMarker<#prev>>::Name,
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
    }
}

/// Inside `chain_checks`' block (its `CHAIN` and `INPUT`): each pair that attention, NST or
/// FSP uses gives maps on both sides, and FSP's pairs have equal channel counts. A failed check
/// names the pairing (its `pair_markers` type), at the student field.
fn pair_map_checks(student: &Student<'_>) -> TokenStream {
    let fsp = uses_fsp(student);
    let checks = student.pairs.iter().filter(|pair| needs_maps(student, pair)).map(|pair| {
        let PairSite {
            marker,
            position,
            teacher_field,
            teacher_chain,
        } = PairSite::of(student, pair);
        let s_ty = pair.student_ty;
        let channels = fsp.then(|| {
            quote! {
                __kd::require_equal_channels::<
                    #marker,
                    { <#s_ty as __kd::Width>::WIDTH == <#teacher_field::Layer as __kd::Width>::WIDTH },
                    { <#s_ty as __kd::Width>::WIDTH },
                    { <#teacher_field::Layer as __kd::Width>::WIDTH },
                >();
            }
        });
        quote_spanned! {pair.student.span()=>
            const _: () = {
                const STUDENT: __kd::Flow = __kd::flow_after(CHAIN, #position, INPUT);
                const TEACHER: bool = __kd::map_after_chain(#teacher_chain, #teacher_field::POSITION + 1, INPUT.map);
                __kd::require_maps::<#marker, { STUDENT.map || !STUDENT.known }, TEACHER>();
                #channels
            };
        }
    });
    quote!(#(#checks)*)
}

/// Default weights of each kind of term (kd-core's `distill::weights`).
fn default_weight(name: &str) -> TokenStream {
    let ident = format_ident!("{}", name.to_uppercase());
    quote!(__kd::weights::#ident)
}

/// One generated loss term: its name, its weight expression and its value expression.
struct Term {
    name: String,
    weight: TokenStream,
    value: TokenStream,
}

/// A setting's value in the generated code: the literal, or the `const` as `f64`.
fn number_tokens(number: &Number) -> TokenStream {
    match number {
        Number::Literal(value) => float_literal(*value),
        Number::Const(path) => quote_spanned!(path.span()=> ((#path) as ::core::primitive::f64)),
    }
}

/// The compile-time checks of the settings given as `const`s, which the macro cannot read:
/// a failed one stops the build with a message naming the setting and the `const`.
fn const_checks(attr: &attr::Distill) -> TokenStream {
    let temperature = attr.temperature.as_ref().map(|t| ("temp", &t.value, true));
    let weights = [("ce_weight", &attr.ce_weight), ("kd_weight", &attr.kd_weight)]
        .into_iter()
        .filter_map(|(key, weight)| weight.as_ref().map(|w| (key, &w.value, false)));
    let kinds = attr
        .matches
        .iter()
        .filter_map(|m| m.weight.as_ref().map(|w| ("weight", &w.value, false)));
    let checks = temperature
        .into_iter()
        .chain(weights)
        .chain(kinds)
        .filter_map(|(key, number, strictly)| {
            let Number::Const(path) = number else { return None };
            let written = quote!(#path).to_string().replace(' ', "");
            let (test, requirement) = if strictly {
                (quote!(>), "finite and > 0")
            } else {
                (quote!(>=), "finite and >= 0")
            };
            let message = format!("`{key} = {written}` must be {requirement}");
            Some(quote_spanned! {path.span()=>
                const _: () = ::core::assert!(
                    ((#path) as ::core::primitive::f64) #test 0.0
                        && ((#path) as ::core::primitive::f64) < <::core::primitive::f64>::INFINITY,
                    #message
                );
            })
        });
    quote!(#(#checks)*)
}

fn float_literal(value: f64) -> TokenStream {
    let literal = proc_macro2::Literal::f64_suffixed(value);
    quote!(#literal)
}

/// Next to an error: a `Distill` impl with the types that could be read and bodies that are
/// never reached, so code using the student reports no second error (thiserror's fallback).
fn distill_stub(student: &Student<'_>, krate: &syn::Path) -> TokenStream {
    let ident = student.model.ident;
    let attr = &student.attr;
    let teacher = teacher_type(student);
    let dtype = attr.dtype.clone().unwrap_or_else(|| format_ident!("f32"));
    let input_shape = input_shape(attr);
    quote! {
        #[allow(non_camel_case_types, clippy::type_complexity, unreachable_code)]
        const _: () = {
            use #krate::__private as __kd;

            impl __kd::Distill for #ident {
                type Dtype = #dtype;
                type Teacher = #teacher;
                type TeacherModel = __kd::Built<#teacher, #dtype>;
                type Model = __kd::Distiller<__kd::Built<#ident, #dtype>, ()>;
                type Input = __kd::Tensor<#input_shape, #dtype, __kd::Cpu>;

                fn build_distiller(_: &__kd::Cpu) -> Self::Model {
                    ::core::unreachable!("#[distill] on this type reported a compile error")
                }

                fn settings() -> __kd::Settings {
                    ::core::unreachable!("#[distill] on this type reported a compile error")
                }

                fn distill_loss_with(
                    _: &mut Self::Model,
                    _: &Self::TeacherModel,
                    _: Self::Input,
                    _: &[usize],
                    _: __kd::Gradients<#dtype, __kd::Cpu>,
                    _: &__kd::Settings,
                ) -> __kd::Result<__kd::loss::LossTerms<#dtype, __kd::Cpu, __kd::OwnedTape<#dtype, __kd::Cpu>>, __kd::LossError> {
                    ::core::unreachable!("#[distill] on this type reported a compile error")
                }
            }
        };
    }
}

/// The `Distill::Teacher` type: the teacher's builder, or a tuple of several teachers' (which
/// dfdx builds into a tuple of models, `teacher.0`, `teacher.1`, ...).
fn teacher_type(student: &Student<'_>) -> TokenStream {
    if student.has_several_teachers() {
        let paths = student.teachers.iter().map(|t| &t.path);
        quote!((#(#paths),*))
    } else {
        let teacher = &student.teachers[0].path;
        let span = student.attr.teacher.as_ref().map_or_else(Span::call_site, |t| t.span);
        quote_spanned!(span=> #teacher)
    }
}

/// The generated variables holding teacher `k`'s logits and taps.
fn teacher_vars(k: usize, several: bool) -> (syn::Ident, syn::Ident) {
    if several {
        (format_ident!("__kd_teacher_logits_{k}"), format_ident!("__kd_teacher_taps_{k}"))
    } else {
        (format_ident!("__kd_teacher_logits"), format_ident!("__kd_teacher_taps"))
    }
}

/// The input batch's shape: `(usize, Const<F>)` or `(usize, Const<C>, usize, usize)`.
fn input_shape(attr: &attr::Distill) -> TokenStream {
    match attr.input.as_ref().map(|i| i.value.as_slice()) {
        Some([features]) => quote!((usize, __kd::Const<#features>)),
        Some([channels, _, _]) => quote!((usize, __kd::Const<#channels>, usize, usize)),
        _ => quote!((usize,)),
    }
}

/// The soft term's `kd_core::loss::Divergence` (forward KL when `logits` is not written).
fn divergence(chosen: Option<Divergence>) -> TokenStream {
    match chosen {
        None | Some(Divergence::Kl) => quote!(__kd::loss::Divergence::ForwardKl),
        Some(Divergence::ReverseKl) => quote!(__kd::loss::Divergence::ReverseKl),
        Some(Divergence::Jsd { beta }) => {
            let beta = float_literal(beta);
            quote!(__kd::loss::Divergence::Jsd { beta: #beta })
        }
        Some(Divergence::Tvd) => quote!(__kd::loss::Divergence::Tvd),
        Some(Divergence::Dist { beta, gamma }) => {
            let (beta, gamma) = (float_literal(beta), float_literal(gamma));
            quote!(__kd::loss::Divergence::Dist { beta: #beta, gamma: #gamma })
        }
    }
}

/// The `Distill` impl: teacher, adapters, input type and the loss, term by term.
fn distill_impl(student: &Student<'_>, krate: &syn::Path) -> TokenStream {
    let ident = student.model.ident;
    let attr = &student.attr;
    let several = student.has_several_teachers();
    let dtype = attr.dtype.clone().unwrap_or_else(|| format_ident!("f32"));
    let tape = quote!(__kd::OwnedTape<#dtype, __kd::Cpu>);
    let input_shape = input_shape(attr);
    let setting = |given: Option<&Sp<Number>>, default: &str| match given {
        Some(number) => number_tokens(&number.value),
        None => default_weight(default),
    };
    let temperature = setting(attr.temperature.as_ref(), "temperature");
    let ce_weight = setting(attr.ce_weight.as_ref(), "ce_weight");
    let kd_weight = setting(attr.kd_weight.as_ref(), "kd_weight");

    // One adapter per pair that a hint or an activation boundary goes through.
    let needs_adapter = attr
        .matches
        .iter()
        .chain(student.pairs.iter().flat_map(|p| &p.kinds))
        .any(|m| matches!(m.kind, Kind::Features(Features::Hint) | Kind::Sparsity));
    let adapters: Vec<TokenStream> = if needs_adapter {
        student
            .pairs
            .iter()
            .map(|p| {
                let (s_ty, t_field) = (p.student_ty, &p.teacher);
                let teacher = &student.teachers[p.teacher_index].path;
                // Student-side tokens at the student's type, teacher-side at the teacher field:
                // a mistake on either side is then reported once, where it was written.
                let name = field_name_type(t_field);
                let teacher_at_field = respanned(quote!(#teacher), t_field.span());
                let teacher_width =
                    quote_spanned!(t_field.span()=> <<#teacher_at_field as __kd::ModelField<#name>>::Layer as __kd::Width>::WIDTH);
                quote_spanned! {s_ty.span()=>
                    <#s_ty as __kd::Width>::Adapter<{ <#s_ty as __kd::Width>::WIDTH }, { #teacher_width }>
                }
            })
            .collect()
    } else {
        Vec::new()
    };

    // Every kind in use: the container's, then those only some fields name.
    let mut kinds: Vec<Kind> = attr.matches.iter().map(|m| m.kind).collect();
    for m in student.pairs.iter().flat_map(|p| &p.kinds) {
        if !kinds.contains(&m.kind) {
            kinds.push(m.kind);
        }
    }
    let mut terms = Vec::new();
    for kind in kinds {
        let container = attr.matches.iter().find(|m| m.kind == kind);
        // A term's weight: the kind's (as the pair's own kinds or else the container writes it),
        // times the weight of every pair it takes part in.
        let weight_of = |name: &str, pairs: &[&Pair<'_>]| {
            let own = pairs.first().and_then(|p| p.kinds.iter().find(|m| m.kind == kind));
            let written = own.or(container).and_then(|m| m.weight.as_ref());
            let base = written.map_or_else(|| default_weight(name), |w| number_tokens(&w.value));
            let scale = float_literal(pairs.iter().map(|p| p.weight).product());
            quote!(#base * #scale)
        };
        let student_tap = |p: &Pair<'_>| {
            let s = p.student;
            quote!(__kd::Tensor::retaped::<#tape>(&__kd_student_taps.#s))
        };
        let teacher_tap = |p: &Pair<'_>| {
            let t = &p.teacher;
            let taps = teacher_vars(p.teacher_index, several).1;
            quote_spanned!(t.span()=> #taps.#t.clone())
        };
        match kind {
            Kind::Attention(Attention::Gradient) => terms.push(Term {
                name: "gradient_attention".into(),
                weight: weight_of("gradient_attention", &[]),
                value: quote! {
                    __kd::loss::gradient_at_loss(
                        &distiller.student,
                        __kd::Tensor::retaped::<#tape>(&input),
                        targets,
                        __kd::loss::input_gradient(teacher, input.clone(), targets)?,
                        __kd::weights::GRADIENT_ATTENTION_STEP,
                    )
                },
            }),
            Kind::Relations(Relations::Layers) => {
                // Consecutive pairs of each teacher, among those on the container's kinds.
                let of_teacher = |k: usize| student.pairs.iter().filter(move |p| p.teacher_index == k && p.uses_defaults());
                let consecutive = (0..student.teachers.len()).flat_map(|k| of_teacher(k).zip(of_teacher(k).skip(1)));
                for (a, b) in consecutive {
                    let (sa, sb, ta, tb) = (student_tap(a), student_tap(b), teacher_tap(a), teacher_tap(b));
                    terms.push(Term {
                        name: format!("fsp.{}.{}", a.student, b.student),
                        weight: weight_of("fsp", &[a, b]),
                        value: quote! {
                            __kd::loss::fsp_loss(
                                __kd::loss::fsp_matrix(#sa, #sb)?,
                                __kd::loss::fsp_matrix(#ta, #tb)?,
                                <__kd::loss::FspConvention as ::core::default::Default>::default(),
                            )
                        },
                    });
                }
            }
            kind => {
                let using = |(_, p): &(usize, &Pair<'_>)| student.kinds_of(p).iter().any(|m| m.kind == kind);
                for (index, p) in student.pairs.iter().enumerate().filter(using) {
                    let (s, t) = (student_tap(p), teacher_tap(p));
                    let adapter = syn::Index::from(index);
                    let field = p.student;
                    let mut push = |prefix: &str, value: TokenStream| {
                        terms.push(Term {
                            name: format!("{prefix}.{field}"),
                            weight: weight_of(prefix, &[p]),
                            value,
                        });
                    };
                    match kind {
                        Kind::Features(Features::Hint) => push(
                            "hint",
                            quote!(__kd::loss::hint_loss(__kd::Module::forward(&distiller.adapters.#adapter, #s), #t)),
                        ),
                        Kind::Features(Features::Nst) => push(
                            "nst",
                            quote!(__kd::loss::nst_loss(#s, #t, <__kd::loss::NstKernel as ::core::default::Default>::default())),
                        ),
                        Kind::Attention(Attention::Activation { paper }) => {
                            let convention = if paper { quote!(Paper) } else { quote!(AuthorsCode) };
                            push(
                                "attention",
                                quote!(__kd::loss::at_loss(#s, #t, __kd::weights::ATTENTION_P, __kd::loss::AtConvention::#convention)),
                            )
                        }
                        Kind::Sparsity => push(
                            "sparsity",
                            quote!(__kd::loss::ab_loss(__kd::Module::forward(&distiller.adapters.#adapter, #s), #t, __kd::weights::SPARSITY_MARGIN)),
                        ),
                        Kind::Relations(relations @ (Relations::Samples | Relations::Rkd | Relations::Sp)) => {
                            if relations != Relations::Sp {
                                push("rkd_distance", quote!(__kd::loss::rkd_distance_loss(#s, #t)));
                                push("rkd_angle", quote!(__kd::loss::rkd_angle_loss(#s, #t)));
                            }
                            if relations != Relations::Rkd {
                                push("sp", quote!(__kd::loss::sp_loss(#s, #t)));
                            }
                        }
                        Kind::Attention(Attention::Gradient) | Kind::Relations(Relations::Layers) => {}
                    }
                }
            }
        }
    }
    let pair_markers = pair_markers(student);
    let size_checks = size_checks(student);
    let chain_checks = chain_checks(student);
    let const_checks = const_checks(attr);
    let term_names = terms.iter().map(|t| &t.name);
    let setting_names = terms.iter().map(|t| &t.name);
    let term_indices = (0..terms.len()).map(syn::Index::from);
    let term_weights = terms.iter().map(|t| &t.weight);
    let term_values = terms.iter().map(|t| &t.value);
    let adapters_tuple = quote!((#(#adapters,)*));
    // dfdx cannot build `()` (it has no tensors), so no adapters means the unit value itself.
    let build_adapters = if adapters.is_empty() {
        quote!(())
    } else {
        quote!(__kd::DeviceBuildExt::build_module::<#adapters_tuple, #dtype>(device))
    };
    let teacher_ty = teacher_type(student);
    let divergence = divergence(attr.logits.as_ref().map(|d| d.value));
    let kd_config =
        quote!(__kd::loss::KdConfig { temperature: #temperature, ce_weight: #ce_weight, kd_weight: #kd_weight, divergence: #divergence });
    let teacher_indices: Vec<usize> = (0..student.teachers.len()).collect();
    let teacher_logit_vars: Vec<syn::Ident> = teacher_indices.iter().map(|&k| teacher_vars(k, several).0).collect();
    let teacher_tap_vars: Vec<syn::Ident> = teacher_indices.iter().map(|&k| teacher_vars(k, several).1).collect();
    let teacher_labels: Vec<String> = student
        .teachers
        .iter()
        .map(|t| {
            t.name
                .as_ref()
                .map_or_else(|| "teacher".to_string(), |name| format!("teacher `{name}`"))
        })
        .collect();
    let teacher_refs: Vec<TokenStream> = teacher_indices
        .iter()
        .map(|&k| {
            let index = syn::Index::from(k);
            if several {
                quote!(&teacher.#index)
            } else {
                quote!(teacher)
            }
        })
        .collect();
    let teacher_names: Vec<String> = student
        .teachers
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    let teacher_weights: Vec<TokenStream> = student
        .teachers
        .iter()
        .filter(|t| t.name.is_some())
        .map(|t| float_literal(t.weight))
        .collect();
    // The logit terms: one teacher's, or several teachers' averaged or one term each.
    let logit_terms = if several {
        let term_names = teacher_names.iter().map(|name| format!("kd.{name}"));
        let indices = teacher_indices.iter().map(|&k| syn::Index::from(k));
        let ensemble = match attr.ensemble.as_ref().map(|e| e.value) {
            Some(attr::Ensemble::Each) => quote!(Each),
            _ => quote!(Average),
        };
        // Each teacher's logits as the student's type, or an error at that teacher's path.
        let student_logits_ty =
            quote!(<__kd::Built<#ident, #dtype> as __kd::Module<__kd::Tensor<#input_shape, #dtype, __kd::Cpu>>>::Output);
        let as_student_logits = student.teachers.iter().zip(&teacher_logit_vars).map(|(t, logits)| {
            // The local is respanned with its use, so it resolves even when the attribute comes
            // from a macro_rules! expansion; the error then points at the teacher.
            let local = respanned(quote!(__kd_logits), t.path.span());
            let into = respanned(quote!(__kd::SameLogits::<#student_logits_ty>::into_student_logits), t.path.span());
            quote!({ let #local = #logits; #into(#local) })
        });
        quote! {
            __kd::loss::multi_teacher_kd_with_ce_loss(
                __kd_student_logits,
                &[#(#as_student_logits),*],
                &[#((#term_names, settings.teachers[#indices].1)),*],
                targets,
                &settings.kd,
                __kd::loss::Ensemble::#ensemble,
            )
        }
    } else {
        quote!(__kd::loss::kd_with_ce_loss(
            __kd_student_logits,
            __kd_teacher_logits,
            targets,
            &settings.kd
        ))
    };
    // A student of one teacher's logits alone also gets the cacheable form, and its loss is
    // that form.
    let (distill_loss_body, from_logits) = if attr.matches.is_empty() && several {
        let body = quote! {
            #(let #teacher_logit_vars = __kd::expect_forward(#teacher_labels, __kd::Module::try_forward(#teacher_refs, input.clone()));)*
            let __kd_student_logits = __kd::expect_forward(
                "student",
                __kd::ModuleMut::try_forward_mut(&mut distiller.student, __kd::trace_input(input, grads)),
            );
            #logit_terms
        };
        (body, TokenStream::new())
    } else if attr.matches.is_empty() {
        let body = quote! {
            <Self as __kd::DistillFromLogits>::distill_loss_from_logits_with(
                distiller,
                <Self as __kd::DistillFromLogits>::teacher_logits(teacher, input.clone()),
                input,
                targets,
                grads,
                settings,
            )
        };
        let from_logits = quote! {
            #[automatically_derived]
            impl __kd::DistillFromLogits for #ident {
                type Logits = <__kd::Built<#teacher_ty, #dtype> as __kd::Module<Self::Input>>::Output;

                fn teacher_logits(teacher: &Self::TeacherModel, input: Self::Input) -> Self::Logits {
                    __kd::expect_forward("teacher", __kd::Module::try_forward(teacher, input))
                }

                fn distill_loss_from_logits_with(
                    distiller: &mut Self::Model,
                    teacher_logits: Self::Logits,
                    input: Self::Input,
                    targets: &[usize],
                    grads: __kd::Gradients<#dtype, __kd::Cpu>,
                    settings: &__kd::Settings,
                ) -> __kd::Result<__kd::loss::LossTerms<#dtype, __kd::Cpu, #tape>, __kd::LossError> {
                    let __kd_student_logits = __kd::expect_forward(
                        "student",
                        __kd::ModuleMut::try_forward_mut(&mut distiller.student, __kd::trace_input(input, grads)),
                    );
                    __kd::loss::kd_with_ce_loss(__kd_student_logits, teacher_logits, targets, &settings.kd)
                }
            }
        };
        (body, from_logits)
    } else {
        let body = quote! {
            #(let (#teacher_logit_vars, #teacher_tap_vars) =
                __kd::expect_forward(#teacher_labels, __kd::TappedModule::try_forward_tapped(#teacher_refs, input.clone()));)*
            let (__kd_student_logits, __kd_student_taps) = __kd::expect_forward(
                "student",
                __kd::TappedModuleMut::try_forward_tapped_mut(&mut distiller.student, __kd::trace_input(input.clone(), grads)),
            );
            let _ = (#(&#teacher_tap_vars,)* &__kd_student_taps);
            let __kd_terms = #logit_terms?;
            #(let __kd_terms = __kd_terms.add(#term_names, settings.terms[#term_indices].1, #term_values?);)*
            __kd::Result::Ok(__kd_terms)
        };
        (body, TokenStream::new())
    };

    quote! {
        #[allow(non_camel_case_types, clippy::type_complexity, clippy::unnecessary_cast)]
        const _: () = {
            use #krate::__private as __kd;

            #pair_markers
            #chain_checks
            #size_checks
            #const_checks

            #[automatically_derived]
            impl __kd::Distill for #ident {
                type Dtype = #dtype;
                type Teacher = #teacher_ty;
                type TeacherModel = __kd::Built<#teacher_ty, #dtype>;
                type Model = __kd::Distiller<__kd::Built<#ident, #dtype>, __kd::Built<#adapters_tuple, #dtype>>;
                type Input = __kd::Tensor<#input_shape, #dtype, __kd::Cpu>;

                fn build_distiller(device: &__kd::Cpu) -> Self::Model {
                    __kd::Distiller {
                        student: __kd::DeviceBuildExt::build_module::<#ident, #dtype>(device),
                        adapters: #build_adapters,
                    }
                }

                fn settings() -> __kd::Settings {
                    __kd::Settings {
                        kd: #kd_config,
                        terms: ::std::vec![#((#setting_names, #term_weights)),*],
                        teachers: ::std::vec![#((#teacher_names, #teacher_weights)),*],
                    }
                }

                fn distill_loss_with(
                    distiller: &mut Self::Model,
                    teacher: &Self::TeacherModel,
                    input: Self::Input,
                    targets: &[usize],
                    grads: __kd::Gradients<#dtype, __kd::Cpu>,
                    settings: &__kd::Settings,
                ) -> __kd::Result<__kd::loss::LossTerms<#dtype, __kd::Cpu, #tape>, __kd::LossError> {
                    #distill_loss_body
                }
            }

            #from_logits
        };
    }
}

/// Small expansion snapshots, for reviewing the shape of the generated code (not the main
/// safety net: the UI, hygiene, equivalence and behaviour tests are). `KD_UPDATE_SNAPSHOTS=1`
/// rewrites them; read the diff.
#[cfg(test)]
mod snapshots {
    use quote::quote;

    fn check(name: &str, tokens: proc_macro2::TokenStream) {
        let file: syn::File = syn::parse2(tokens).unwrap_or_else(|e| panic!("{name}: the expansion does not parse: {e}"));
        let actual = prettyplease::unparse(&file);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(format!("{name}.rs"));
        if std::env::var_os("KD_UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new("."))).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert!(
            actual == expected,
            "{name}: the expansion changed; review it and rerun with KD_UPDATE_SNAPSHOTS=1\n{actual}"
        );
    }

    #[test]
    fn model_of_two_layers() {
        let item = quote! {
            struct Teacher {
                fc: Linear<4, 8>,
                head: Linear<8, 2>,
            }
        };
        check("model_of_two_layers", super::expand_model(quote!(), item));
    }

    #[test]
    fn student_with_one_hint_pair() {
        let args = quote!(teacher = Teacher, input = [4], temp = 2.0, match(features));
        let item = quote! {
            struct Student {
                #[distill(pair = fc)]
                fc: Linear<4, 3>,
                head: Linear<3, 2>,
            }
        };
        check("student_with_one_hint_pair", super::expand_distill(args, item));
    }

    #[test]
    fn student_of_two_teachers() {
        let args = quote!(teachers(wide = Wide, deep = Deep), teacher_weights(wide = 2.0), ensemble = each, input = [4], match(features));
        let item = quote! {
            struct Student {
                #[distill(pair = wide.fc)]
                fc: Linear<4, 3>,
                #[distill(pair = deep.fc2)]
                fc2: Linear<3, 3>,
                head: Linear<3, 2>,
            }
        };
        check("student_of_two_teachers", super::expand_distill(args, item));
    }
}
