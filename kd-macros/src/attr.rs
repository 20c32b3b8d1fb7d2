//! `#[distill(...)]` on the student and on its fields, parsed into a model of what was written.
//! Parsing never stops at the first mistake: every one goes to the [`Ctxt`].

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;

use crate::ctxt::Ctxt;
use crate::symbol::*;

/// A value and the span of the tokens it came from.
#[derive(Debug, Clone)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

/// `teacher = Path` or `teacher = Self`.
#[derive(Debug, Clone)]
pub enum Teacher {
    SelfType,
    Path(syn::Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Features {
    Hint,
    Nst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// Activation maps; `paper` selects the paper's normalisation.
    Activation {
        paper: bool,
    },
    Gradient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relations {
    /// FSP matrices between consecutive paired layers.
    Layers,
    /// RKD distance and angle, and similarity-preserving, between samples.
    Samples,
    /// RKD distance and angle only.
    Rkd,
    /// Similarity-preserving only.
    Sp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Features(Features),
    Attention(Attention),
    Sparsity,
    Relations(Relations),
}

impl Kind {
    /// The loss terms this kind generates; two kinds that share one would add it twice.
    pub fn terms(&self) -> &'static [&'static str] {
        match self {
            Kind::Features(Features::Hint) => &["hint"],
            Kind::Features(Features::Nst) => &["nst"],
            Kind::Attention(Attention::Activation { .. }) => &["attention"],
            Kind::Attention(Attention::Gradient) => &["gradient_attention"],
            Kind::Sparsity => &["sparsity"],
            Kind::Relations(Relations::Layers) => &["fsp"],
            Kind::Relations(Relations::Samples) => &["rkd_distance", "rkd_angle", "sp"],
            Kind::Relations(Relations::Rkd) => &["rkd_distance", "rkd_angle"],
            Kind::Relations(Relations::Sp) => &["sp"],
        }
    }

    /// How many pairs one term of this kind relates: 0 (the input gradient), 1, or 2
    /// (consecutive pairs, FSP).
    pub fn pairs_needed(&self) -> usize {
        match self {
            Kind::Attention(Attention::Gradient) => 0,
            Kind::Relations(Relations::Layers) => 2,
            _ => 1,
        }
    }

    /// The kind as it is written in `match(...)`.
    pub fn written(&self) -> &'static str {
        match self {
            Kind::Features(Features::Hint) => "features(hint)",
            Kind::Features(Features::Nst) => "features(nst)",
            Kind::Attention(Attention::Activation { paper: false }) => "attention(activation)",
            Kind::Attention(Attention::Activation { paper: true }) => "attention(paper)",
            Kind::Attention(Attention::Gradient) => "attention(gradient)",
            Kind::Sparsity => "sparsity",
            Kind::Relations(Relations::Layers) => "relations(layers)",
            Kind::Relations(Relations::Samples) => "relations(samples)",
            Kind::Relations(Relations::Rkd) => "relations(rkd)",
            Kind::Relations(Relations::Sp) => "relations(sp)",
        }
    }
}

/// A setting as written: a number literal, or a path to a `const` (checked at compile time by
/// the generated code, since its value is not known to the macro).
#[derive(Debug, Clone)]
pub enum Number {
    Literal(f64),
    Const(syn::Path),
}

impl Number {
    /// The literal's value; `None` for a `const`.
    pub fn literal(&self) -> Option<f64> {
        match self {
            Number::Literal(value) => Some(*value),
            Number::Const(_) => None,
        }
    }
}

/// One entry of `match(...)`.
#[derive(Debug, Clone)]
pub struct Match {
    pub kind: Kind,
    pub weight: Option<Sp<Number>>,
    pub span: Span,
}

/// `logits = ...`: the divergence of the soft term, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Divergence {
    Kl,
    ReverseKl,
    Jsd { beta: f64 },
    Tvd,
    Dist { beta: f64, gamma: f64 },
}

/// One entry of `teachers(name = Path, ...)`.
#[derive(Debug, Clone)]
pub struct NamedTeacher {
    pub name: syn::Ident,
    pub path: syn::Path,
}

/// `ensemble = average | each`: how the soft term uses several teachers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensemble {
    Average,
    Each,
}

/// The container attribute.
#[derive(Debug, Clone, Default)]
pub struct Distill {
    pub teacher: Option<Sp<Teacher>>,
    /// `teachers(wide = WideTeacher, deep = DeepTeacher)`, in the order written.
    pub teachers: Vec<NamedTeacher>,
    pub teachers_span: Option<Span>,
    /// How many entries `teachers(...)` had, refused ones included.
    pub teacher_entries: usize,
    /// `teacher_weights(wide = 2.0, deep = 1.0)`, in the order written.
    pub teacher_weights: Vec<(syn::Ident, f64)>,
    pub teacher_weights_span: Option<Span>,
    pub ensemble: Option<Sp<Ensemble>>,
    pub temperature: Option<Sp<Number>>,
    pub ce_weight: Option<Sp<Number>>,
    pub kd_weight: Option<Sp<Number>>,
    pub logits: Option<Sp<Divergence>>,
    pub matches: Vec<Match>,
    pub match_span: Option<Span>,
    pub input: Option<Sp<Vec<usize>>>,
    pub dtype: Option<syn::Ident>,
    pub krate: Option<syn::Path>,
    /// Every key written, valid or not: a bad `input` is not also a missing one.
    pub written: Vec<String>,
    /// How many entries `match(...)` had, unknown ones included.
    pub match_entries: usize,
}

/// Records `key` as seen; a second occurrence is an error at its span.
fn first_time(cx: &Ctxt, seen: &mut Vec<String>, key: &str, span: Span) -> bool {
    if seen.iter().any(|k| k == key) {
        cx.error_at(span, format!("duplicate key `{key}` in #[distill(...)]"));
        false
    } else {
        seen.push(key.to_string());
        true
    }
}

/// The name a nested meta starts with (keywords such as `match` and `crate` included).
fn key_of(meta: &ParseNestedMeta<'_>) -> String {
    meta.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default()
}

/// Skips whatever follows an unknown key (`= value` or `(...)`), so parsing can go on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

pub fn unknown(cx: &Ctxt, what: &str, word: &str, span: Span, candidates: &[&str]) {
    let hint = match suggest(word, candidates) {
        Some(close) => format!("; did you mean `{close}`?"),
        None => format!(
            "; expected one of {}",
            candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
        ),
    };
    cx.error_at(span, format!("unknown {what} `{word}`{hint}"));
}

/// A number literal (possibly negated), `f32::NAN`/`f64::NAN` or `INFINITY`, as `f64`.
fn parse_number(expr: &syn::Expr) -> Option<f64> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(f), ..
        }) => f.base10_parse().ok(),
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<i64>().ok().map(|v| v as f64),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => parse_number(expr).map(|v| -v),
        syn::Expr::Path(p) => match p.path.segments.last().map(|s| s.ident.to_string()).as_deref() {
            Some("NAN") => Some(f64::NAN),
            Some("INFINITY") => Some(f64::INFINITY),
            _ => None,
        },
        syn::Expr::Paren(p) => parse_number(&p.expr),
        _ => None,
    }
}

/// `key = number`, checked against `valid` (with `requirement` in the message).
fn number(cx: &Ctxt, meta: &ParseNestedMeta<'_>, key: &str, valid: fn(f64) -> bool, requirement: &str) -> syn::Result<Option<Sp<f64>>> {
    let expr: syn::Expr = meta.value()?.parse()?;
    Ok(checked_number(cx, &expr, key, valid, requirement, "a number"))
}

/// A number literal checked against `valid`, or an error at it.
fn checked_number(cx: &Ctxt, expr: &syn::Expr, key: &str, valid: fn(f64) -> bool, requirement: &str, what: &str) -> Option<Sp<f64>> {
    match parse_number(expr) {
        Some(value) if valid(value) => Some(Sp { value, span: expr.span() }),
        Some(value) => {
            cx.error_spanned_by(expr, format!("`{key}` must be {requirement}, got {value}"));
            None
        }
        None => {
            cx.error_spanned_by(expr, format!("`{key}` must be {what}, such as `{key} = 4.0`"));
            None
        }
    }
}

/// `key = number` or `key = path::TO_CONST`: a literal is checked here against `valid`, a
/// `const` by the generated code.
fn number_or_const(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    valid: fn(f64) -> bool,
    requirement: &str,
) -> syn::Result<Option<Sp<Number>>> {
    let expr: syn::Expr = meta.value()?.parse()?;
    if let syn::Expr::Path(path) = &expr {
        let special = matches!(
            path.path.segments.last().map(|s| s.ident.to_string()).as_deref(),
            Some("NAN" | "INFINITY")
        );
        if !special && path.qself.is_none() {
            return Ok(Some(Sp {
                value: Number::Const(path.path.clone()),
                span: expr.span(),
            }));
        }
    }
    Ok(
        checked_number(cx, &expr, key, valid, requirement, "a number or a `const`").map(|value| Sp {
            value: Number::Literal(value.value),
            span: value.span,
        }),
    )
}

fn positive(value: f64) -> bool {
    value.is_finite() && value > 0.0
}

fn non_negative(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

fn unit(value: f64) -> bool {
    (0.0..=1.0).contains(&value)
}

impl Distill {
    /// Parses the arguments of `#[distill(...)]`.
    pub fn from_tokens(cx: &Ctxt, args: TokenStream) -> Distill {
        let mut attr = Distill::default();
        let mut seen = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = key_of(&meta);
            let span = meta.path.span();
            if !CONTAINER_KEYS.contains(&key.as_str()) {
                unknown(cx, "key", &key, span, &CONTAINER_KEYS);
                return skip_value(&meta);
            }
            if !first_time(cx, &mut seen, &key, span) {
                return skip_value(&meta);
            }
            match key.as_str() {
                // #[distill(teacher = path::To::Teacher)] or #[distill(teacher = Self)]
                TEACHER => {
                    let path: syn::Path = meta.value()?.parse()?;
                    let value = if path.is_ident("Self") {
                        Teacher::SelfType
                    } else {
                        Teacher::Path(path.clone())
                    };
                    attr.teacher = Some(Sp { value, span: path.span() });
                }
                // #[distill(teachers(wide = WideTeacher, deep = DeepTeacher))]
                TEACHERS => {
                    attr.teachers_span = Some(span);
                    meta.parse_nested_meta(|entry| {
                        attr.teacher_entries += 1;
                        let Some(name) = entry.path.get_ident().cloned() else {
                            cx.error_spanned_by(&entry.path, "name each teacher with one word: `teachers(wide = WideTeacher, ...)`");
                            return skip_value(&entry);
                        };
                        if !entry.input.peek(syn::Token![=]) {
                            cx.error_at(name.span(), format!("give teacher `{name}` its model type: `{name} = TeacherType`"));
                            return skip_value(&entry);
                        }
                        let path: syn::Path = entry.value()?.parse()?;
                        if attr.teachers.iter().any(|t| t.name == name) {
                            cx.error_at(name.span(), format!("duplicate teacher `{name}` in teachers(...)"));
                        } else if path.is_ident("Self") {
                            cx.error_spanned_by(
                                &path,
                                "`Self` cannot be one of several teachers; self-distillation takes `teacher = Self`",
                            );
                        } else {
                            attr.teachers.push(NamedTeacher { name, path });
                        }
                        Ok(())
                    })?;
                }
                // #[distill(teacher_weights(wide = 2.0, deep = 1.0))]
                TEACHER_WEIGHTS => {
                    attr.teacher_weights_span = Some(span);
                    meta.parse_nested_meta(|entry| {
                        let Some(name) = entry.path.get_ident().cloned() else {
                            cx.error_spanned_by(&entry.path, "name a teacher of `teachers(...)`: `teacher_weights(wide = 2.0)`");
                            return skip_value(&entry);
                        };
                        let weight = number(
                            cx,
                            &entry,
                            &format!("teacher_weights({name})"),
                            non_negative,
                            "a finite number >= 0",
                        )?;
                        if attr.teacher_weights.iter().any(|(other, _)| *other == name) {
                            cx.error_at(name.span(), format!("duplicate teacher `{name}` in teacher_weights(...)"));
                        } else if let Some(weight) = weight {
                            attr.teacher_weights.push((name, weight.value));
                        }
                        Ok(())
                    })?;
                }
                // #[distill(ensemble = average)] or #[distill(ensemble = each)]
                ENSEMBLE => {
                    let word: syn::Ident = meta.value()?.parse()?;
                    let value = match word.to_string().as_str() {
                        AVERAGE => Some(Ensemble::Average),
                        EACH => Some(Ensemble::Each),
                        other => {
                            unknown(cx, "ensemble", other, word.span(), &ENSEMBLES);
                            None
                        }
                    };
                    attr.ensemble = value.map(|value| Sp { value, span: word.span() });
                }
                // #[distill(temp = 4.0)]
                TEMP => attr.temperature = number_or_const(cx, &meta, TEMP, positive, "a finite number > 0")?,
                // #[distill(ce_weight = 0.1)] or #[distill(ce_weight = crate::CE_WEIGHT)]
                CE_WEIGHT => attr.ce_weight = number_or_const(cx, &meta, CE_WEIGHT, non_negative, "a finite number >= 0")?,
                // #[distill(kd_weight = 0.9)]
                KD_WEIGHT => attr.kd_weight = number_or_const(cx, &meta, KD_WEIGHT, non_negative, "a finite number >= 0")?,
                // #[distill(logits = jsd(beta = 0.5))]
                LOGITS => attr.logits = parse_divergence(cx, meta.value()?)?,
                // #[distill(match(features, attention(gradient), relations(samples)))]
                MATCH => {
                    attr.match_span = Some(span);
                    let empty = meta.input.fork().parse::<proc_macro2::Group>().is_ok_and(|g| g.stream().is_empty());
                    if empty {
                        meta.input.parse::<proc_macro2::Group>()?;
                        return Ok(());
                    }
                    meta.parse_nested_meta(|kind| {
                        attr.match_entries += 1;
                        if let Some(m) = parse_kind(cx, &kind)? {
                            push_kind(cx, &mut attr.matches, m, &key_of(&kind), "match(...)");
                        }
                        Ok(())
                    })?;
                }
                // #[distill(input = [1, 28, 28])]
                INPUT => {
                    let array: syn::ExprArray = meta.value()?.parse()?;
                    let dims: Option<Vec<usize>> = array
                        .elems
                        .iter()
                        .map(|e| match e {
                            syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<usize>().ok().filter(|&d| d > 0),
                            _ => None,
                        })
                        .collect();
                    match dims {
                        Some(dims) if dims.len() == 1 || dims.len() == 3 => {
                            attr.input = Some(Sp {
                                value: dims,
                                span: array.span(),
                            })
                        }
                        _ => cx.error_spanned_by(
                            &array,
                            "`input` is the shape of one sample: `[features]` or `[channels, height, width]`, positive integers",
                        ),
                    }
                }
                // #[distill(dtype = f64)]
                DTYPE => {
                    let ident: syn::Ident = meta.value()?.parse()?;
                    if ident == "f32" || ident == "f64" {
                        attr.dtype = Some(ident);
                    } else {
                        cx.error_spanned_by(&ident, format!("`dtype` must be `f32` or `f64`, got `{ident}`"));
                    }
                }
                // #[distill(crate = "kd_core")]
                _ => {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    match lit.parse::<syn::Path>() {
                        Ok(path) => attr.krate = Some(path),
                        Err(_) => cx.error_spanned_by(&lit, "`crate` must name a path, such as `crate = \"kd_core\"`"),
                    }
                }
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.syn_error(error);
        }
        attr.written = seen;
        attr
    }
}

/// Adds `m` to `kinds` unless a kind there already adds one of its terms (an error at `m`).
fn push_kind(cx: &Ctxt, kinds: &mut Vec<Match>, m: Match, written: &str, list: &str) -> bool {
    let shared = |other: &Match| m.kind.terms().iter().find(|t| other.kind.terms().contains(t)).copied();
    match kinds.iter().find_map(|other| Some((other, shared(other)?))) {
        Some((other, _)) if other.kind.terms() == m.kind.terms() => {
            cx.error_at(m.span, format!("duplicate kind `{written}` in {list}"));
            false
        }
        Some((other, term)) => {
            cx.error_at(
                m.span,
                format!(
                    "`{}` adds the `{term}` term, which `{}` already adds; keep one of them",
                    m.kind.written(),
                    other.kind.written()
                ),
            );
            false
        }
        None => {
            kinds.push(m);
            true
        }
    }
}

/// `logits = name` or `logits = name(option = value, ...)`; defaults are kd-core's
/// (`jsd`: β = 0.5, `dist`: β = γ = 1).
fn parse_divergence(cx: &Ctxt, input: syn::parse::ParseStream<'_>) -> syn::Result<Option<Sp<Divergence>>> {
    let name: syn::Ident = input.parse()?;
    let span = name.span();
    let word = name.to_string();
    let (mut divergence, options): (Divergence, &[&str]) = match word.as_str() {
        KL => (Divergence::Kl, &[]),
        REVERSE_KL => (Divergence::ReverseKl, &[]),
        JSD => (Divergence::Jsd { beta: 0.5 }, &[BETA]),
        TVD => (Divergence::Tvd, &[]),
        DIST => (Divergence::Dist { beta: 1.0, gamma: 1.0 }, &[BETA, GAMMA]),
        _ => {
            unknown(cx, "divergence", &word, span, &DIVERGENCES);
            if input.peek(syn::token::Paren) {
                input.parse::<proc_macro2::Group>()?;
            }
            return Ok(None);
        }
    };
    if !input.peek(syn::token::Paren) {
        return Ok(Some(Sp { value: divergence, span }));
    }
    let group: proc_macro2::Group = input.parse()?;
    if options.is_empty() {
        cx.error_at(group.span(), format!("`{word}` takes no options; write `logits = {word}`"));
        return Ok(None);
    }
    let mut valid = true;
    let mut seen = Vec::new();
    let parser = syn::meta::parser(|option| {
        let key = key_of(&option);
        let option_span = option.path.span();
        if !options.contains(&key.as_str()) {
            unknown(cx, &format!("option of `{word}`"), &key, option_span, options);
            valid = false;
            return skip_value(&option);
        }
        if seen.contains(&key) {
            cx.error_at(option_span, format!("duplicate option `{key}` in `{word}(...)`"));
            valid = false;
            return skip_value(&option);
        }
        seen.push(key.clone());
        let value = match (divergence, key.as_str()) {
            (Divergence::Jsd { .. }, _) => number(cx, &option, BETA, unit, "in [0, 1] (0: forward KL, 1: reverse KL)")?,
            _ => number(cx, &option, &key, non_negative, "a finite number >= 0")?,
        };
        let Some(value) = value.map(|v| v.value) else {
            valid = false;
            return Ok(());
        };
        divergence = match (divergence, key.as_str()) {
            (Divergence::Jsd { .. }, _) => Divergence::Jsd { beta: value },
            (Divergence::Dist { gamma, .. }, BETA) => Divergence::Dist { beta: value, gamma },
            (Divergence::Dist { beta, .. }, _) => Divergence::Dist { beta, gamma: value },
            (other, _) => other,
        };
        Ok(())
    });
    parser.parse2(group.stream())?;
    Ok(valid.then_some(Sp { value: divergence, span }))
}

/// One `match(...)` entry: `kind`, `kind(method)`, `kind(weight = w)`, `kind(method, weight = w)`.
fn parse_kind(cx: &Ctxt, kind: &ParseNestedMeta<'_>) -> syn::Result<Option<Match>> {
    let name = key_of(kind);
    let span = kind.path.span();
    let default = match name.as_str() {
        FEATURES => Kind::Features(Features::Hint),
        ATTENTION => Kind::Attention(Attention::Activation { paper: false }),
        SPARSITY => Kind::Sparsity,
        RELATIONS => Kind::Relations(Relations::Layers),
        _ => {
            unknown(cx, "kind of knowledge", &name, span, &MATCH_KINDS);
            skip_value(kind)?;
            return Ok(None);
        }
    };
    let mut m = Match {
        kind: default,
        weight: None,
        span,
    };
    if kind.input.peek(syn::token::Paren) {
        let mut method: Option<String> = None;
        let mut weighted = false;
        kind.parse_nested_meta(|option| {
            let word = key_of(&option);
            let option_span = option.path.span();
            if word == WEIGHT {
                if std::mem::replace(&mut weighted, true) {
                    cx.error_at(option_span, format!("duplicate option `weight` in `{name}(...)`"));
                    return skip_value(&option);
                }
                m.weight = number_or_const(cx, &option, WEIGHT, non_negative, "a finite number >= 0")?;
                return Ok(());
            }
            if let Some(first) = &method {
                cx.error_at(
                    option_span,
                    format!(
                        "`{name}` takes one method and `{first}` is already chosen; write `{name}({first}), {name}({word})` to use both"
                    ),
                );
                return skip_value(&option);
            }
            method = Some(word.clone());
            let methods: &[&str] = match default {
                Kind::Features(_) => &[HINT, NST],
                Kind::Attention(_) => &[ACTIVATION, PAPER, GRADIENT],
                Kind::Sparsity => &[],
                Kind::Relations(_) => &[LAYERS, SAMPLES, RKD, SP],
            };
            m.kind = match (default, word.as_str()) {
                (Kind::Features(_), HINT) => Kind::Features(Features::Hint),
                (Kind::Features(_), NST) => Kind::Features(Features::Nst),
                (Kind::Attention(_), ACTIVATION) => Kind::Attention(Attention::Activation { paper: false }),
                (Kind::Attention(_), PAPER) => Kind::Attention(Attention::Activation { paper: true }),
                (Kind::Attention(_), GRADIENT) => Kind::Attention(Attention::Gradient),
                (Kind::Relations(_), LAYERS) => Kind::Relations(Relations::Layers),
                (Kind::Relations(_), SAMPLES) => Kind::Relations(Relations::Samples),
                (Kind::Relations(_), RKD) => Kind::Relations(Relations::Rkd),
                (Kind::Relations(_), SP) => Kind::Relations(Relations::Sp),
                _ => {
                    let mut candidates = methods.to_vec();
                    candidates.push(WEIGHT);
                    unknown(cx, &format!("option of `{name}`"), &word, option_span, &candidates);
                    skip_value(&option)?;
                    return Ok(());
                }
            };
            Ok(())
        })?;
    }
    Ok(Some(m))
}

/// What `pair = ...` names: a teacher field, or `teacher.field` with several teachers.
#[derive(Debug, Clone)]
pub struct PairTarget {
    pub teacher: Option<syn::Ident>,
    pub field: syn::Ident,
}

/// `#[distill(pair)]`, `#[distill(pair = teacher_field)]`, `#[distill(pair = wide.field)]`,
/// `#[distill(pair = t, weight = 2.0)]`, `#[distill(pair, features(hint), attention)]` on a
/// student field.
#[derive(Debug, Clone)]
pub struct FieldAttr {
    /// Present when the field is paired; what it names (the same field when omitted).
    pub pair: Option<Option<PairTarget>>,
    pub pair_span: Option<Span>,
    pub weight: Option<f64>,
    pub weight_span: Option<Span>,
    /// The kinds of knowledge this pair uses instead of the container's `match(...)`.
    pub kinds: Vec<Match>,
    /// `#[distill(keeps_shape)]`: the layer keeps a map's size (for a layer without `Spatial`).
    pub keeps_shape: bool,
    /// Whether this field's attribute had a mistake (later checks then stay quiet about it).
    pub had_error: bool,
}

impl FieldAttr {
    pub fn from_attrs(cx: &Ctxt, attrs: &[syn::Attribute]) -> FieldAttr {
        let mut field = FieldAttr {
            pair: None,
            pair_span: None,
            weight: None,
            weight_span: None,
            kinds: Vec::new(),
            keeps_shape: false,
            had_error: false,
        };
        let mut seen = Vec::new();
        for attr in attrs.iter().filter(|a| a.path().is_ident("distill")) {
            let result = attr.parse_nested_meta(|meta| {
                let key = key_of(&meta);
                let span = meta.path.span();
                if MATCH_KINDS.contains(&key.as_str()) {
                    // #[distill(pair, features(hint), attention)]: this pair's own kinds.
                    match parse_kind(cx, &meta)? {
                        Some(m) if m.kind.pairs_needed() != 1 => {
                            cx.error_at(
                                m.span,
                                format!(
                                    "`{}` is not a kind of one pair; write it in the container's `match(...)`",
                                    m.kind.written()
                                ),
                            );
                            field.had_error = true;
                        }
                        Some(m) => {
                            if !push_kind(cx, &mut field.kinds, m, &key, "this field's kinds") {
                                field.had_error = true;
                            }
                        }
                        None => field.had_error = true,
                    }
                    return Ok(());
                }
                if !FIELD_KEYS.contains(&key.as_str()) {
                    let mut candidates = FIELD_KEYS.to_vec();
                    candidates.extend(MATCH_KINDS);
                    unknown(cx, "field key", &key, span, &candidates);
                    field.had_error = true;
                    return skip_value(&meta);
                }
                if !first_time(cx, &mut seen, &key, span) {
                    return skip_value(&meta);
                }
                if key == KEEPS_SHAPE {
                    field.keeps_shape = true;
                } else if key == PAIR {
                    field.pair_span = Some(span);
                    field.pair = Some(if meta.input.peek(syn::Token![=]) {
                        let value = meta.value()?;
                        let first: syn::Ident = value.parse()?;
                        Some(if value.peek(syn::Token![.]) {
                            value.parse::<syn::Token![.]>()?;
                            PairTarget {
                                teacher: Some(first),
                                field: value.parse()?,
                            }
                        } else {
                            PairTarget {
                                teacher: None,
                                field: first,
                            }
                        })
                    } else {
                        None
                    });
                } else {
                    field.weight_span = Some(span);
                    field.weight = number(cx, &meta, WEIGHT, non_negative, "a finite number >= 0")?.map(|w| w.value);
                }
                Ok(())
            });
            if let Err(error) = result {
                field.had_error = true;
                cx.syn_error(error);
            }
        }
        if let (Some(m), None) = (field.kinds.first(), &field.pair) {
            cx.error_at(
                m.span,
                "kinds on a field choose what its pair transfers, and this field is not paired; write `#[distill(pair, ...)]`",
            );
            field.had_error = true;
        }
        if let (Some(span), None) = (field.weight_span, &field.pair) {
            cx.error_at(
                span,
                "`weight` weighs a pair's terms, and this field is not paired; write `#[distill(pair, weight = ...)]`",
            );
            field.had_error = true;
        }
        field
    }
}
