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
    /// Which of [`Student::teachers`] the field belongs to.
    pub teacher_index: usize,
    pub weight: f64,
    /// The pair's own kinds (`#[distill(pair, features(hint))]`); empty: the container's.
    pub kinds: Vec<attr::Match>,
}

impl Pair<'_> {
    /// Whether the pair uses the container's `match(...)` (it names no kinds of its own).
    pub fn uses_defaults(&self) -> bool {
        self.kinds.is_empty()
    }
}

/// One teacher: its name under `teachers(...)` (none for `teacher = ...`), its builder type
/// and its relative weight in the soft term.
pub struct TeacherModel {
    pub name: Option<syn::Ident>,
    pub path: syn::Path,
    pub weight: f64,
}

/// A student: its model, its settings, its teachers, its pairings.
pub struct Student<'a> {
    pub model: Model<'a>,
    pub attr: attr::Distill,
    /// One for `teacher = ...` (the student itself for `Self`), several for `teachers(...)`.
    pub teachers: Vec<TeacherModel>,
    pub pairs: Vec<Pair<'a>>,
}

impl<'a> Student<'a> {
    pub fn from_ast(cx: &Ctxt, attr: attr::Distill, input: &'a syn::DeriveInput) -> Option<Student<'a>> {
        let model = Model::from_ast(cx, input, "#[distill]")?;
        let teachers = if attr.teachers.is_empty() {
            let path = match attr.teacher.as_ref().map(|t| &t.value) {
                Some(attr::Teacher::Path(path)) => path.clone(),
                _ => syn::Path::from(model.ident.clone()),
            };
            vec![TeacherModel {
                name: None,
                path,
                weight: 1.0,
            }]
        } else {
            attr.teachers
                .iter()
                .map(|t| TeacherModel {
                    name: Some(t.name.clone()),
                    path: t.path.clone(),
                    weight: attr
                        .teacher_weights
                        .iter()
                        .find(|(name, _)| *name == t.name)
                        .map_or(1.0, |(_, w)| *w),
                })
                .collect()
        };
        let names: Vec<String> = teachers.iter().filter_map(|t| t.name.as_ref().map(|n| n.to_string())).collect();
        let pairs = model
            .fields
            .iter()
            .filter_map(|f| {
                let named = f.attr.pair.as_ref()?;
                let field = named.as_ref().map_or_else(|| f.ident.clone(), |target| target.field.clone());
                let teacher_index = match named.as_ref().and_then(|target| target.teacher.as_ref()) {
                    _ if f.attr.had_error => 0,
                    Some(teacher) if names.is_empty() => {
                        cx.error_at(
                            teacher.span(),
                            format!("`{teacher}.{field}` names a teacher, but there is only one; write `pair = {field}`"),
                        );
                        0
                    }
                    Some(teacher) => match names.iter().position(|n| teacher == n) {
                        Some(index) => index,
                        None => {
                            let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
                            crate::attr::unknown(cx, "teacher", &teacher.to_string(), teacher.span(), &candidates);
                            0
                        }
                    },
                    None if names.len() > 1 => {
                        let span = f.attr.pair_span.unwrap_or_else(|| f.ident.span());
                        cx.error_at(
                            span,
                            format!(
                                "with several teachers, name the one this field learns from: `pair = {}.{field}` (teachers: {})",
                                names[0],
                                names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                            ),
                        );
                        0
                    }
                    None => 0,
                };
                Some(Pair {
                    student: f.ident,
                    student_ty: f.ty,
                    teacher: field,
                    teacher_index,
                    weight: f.attr.weight.unwrap_or(1.0),
                    kinds: f.attr.kinds.clone(),
                })
            })
            .collect();
        Some(Student {
            model,
            attr,
            teachers,
            pairs,
        })
    }

    /// The kinds pair `p` transfers: its own, or the container's.
    pub fn kinds_of<'s>(&'s self, p: &'s Pair<'_>) -> &'s [attr::Match] {
        if p.uses_defaults() {
            &self.attr.matches
        } else {
            &p.kinds
        }
    }

    /// Whether the student learns from several teachers (`teachers(...)`).
    pub fn has_several_teachers(&self) -> bool {
        self.teachers.len() > 1
    }
}
