//! The semantic model: a model struct's layers, and a student's pairings and settings.

use crate::attr::{self, FieldAttr};
use crate::ctxt::Ctxt;

/// One layer field of a model struct.
pub struct Field<'a> {
    pub ident: &'a syn::Ident,
    pub ty: &'a syn::Type,
    pub attr: FieldAttr,
}

/// A struct whose named fields are dfdx layers, applied in order.
pub struct Model<'a> {
    pub ident: &'a syn::Ident,
    pub fields: Vec<Field<'a>>,
}

impl<'a> Model<'a> {
    /// Reads the model out of `input`, reporting why it cannot be one (`macro_name` names the
    /// attribute in the messages).
    pub fn from_ast(cx: &Ctxt, input: &'a syn::DeriveInput, macro_name: &str) -> Option<Model<'a>> {
        let fields = match &input.data {
            syn::Data::Struct(syn::DataStruct {
                fields: syn::Fields::Named(named),
                ..
            }) => &named.named,
            syn::Data::Struct(syn::DataStruct { fields, struct_token, .. }) => {
                let shape = if matches!(fields, syn::Fields::Unit) {
                    "a unit struct"
                } else {
                    "a tuple struct"
                };
                cx.error_spanned_by(
                    struct_token,
                    format!(
                        "{macro_name} needs a struct with named fields, one per layer; `{}` is {shape}",
                        input.ident
                    ),
                );
                return None;
            }
            syn::Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    format!(
                        "{macro_name} needs a struct with named fields, one per layer; `{}` is an enum",
                        input.ident
                    ),
                );
                return None;
            }
            syn::Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    format!(
                        "{macro_name} needs a struct with named fields, one per layer; `{}` is a union",
                        input.ident
                    ),
                );
                return None;
            }
        };
        if !input.generics.params.is_empty() {
            cx.error_spanned_by(
                &input.generics,
                format!("{macro_name} does not support generic model structs; write the layer types out"),
            );
            return None;
        }
        if fields.is_empty() {
            cx.error_spanned_by(
                &input.ident,
                format!("`{}` has no layers; a model needs at least one field", input.ident),
            );
            return None;
        }
        let fields = fields
            .iter()
            .filter_map(|f| {
                f.ident.as_ref().map(|ident| Field {
                    ident,
                    ty: &f.ty,
                    attr: FieldAttr::from_attrs(cx, &f.attrs),
                })
            })
            .collect();
        Some(Model {
            ident: &input.ident,
            fields,
        })
    }
}

/// A student field paired with a teacher field.
pub struct Pair<'a> {
    pub student: &'a syn::Ident,
    pub student_ty: &'a syn::Type,
    /// The teacher field, spanned at the token that named it (or at the student field).
    pub teacher: syn::Ident,
    pub weight: f64,
}

/// A student: its model, its settings, its pairings.
pub struct Student<'a> {
    pub model: Model<'a>,
    pub attr: attr::Distill,
    pub pairs: Vec<Pair<'a>>,
}

impl<'a> Student<'a> {
    pub fn from_ast(cx: &Ctxt, attr: attr::Distill, input: &'a syn::DeriveInput) -> Option<Student<'a>> {
        let model = Model::from_ast(cx, input, "#[distill]")?;
        let pairs = model
            .fields
            .iter()
            .filter_map(|f| {
                let named = f.attr.pair.as_ref()?;
                Some(Pair {
                    student: f.ident,
                    student_ty: f.ty,
                    teacher: named.clone().unwrap_or_else(|| f.ident.clone()),
                    weight: f.attr.weight.unwrap_or(1.0),
                })
            })
            .collect();
        Some(Student { model, attr, pairs })
    }
}
