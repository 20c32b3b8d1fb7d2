//! Checks that need more than one attribute at a time. Simpler ones happen while parsing.

use proc_macro2::Span;

use crate::ast::Student;
use crate::attr::Kind;
use crate::ctxt::Ctxt;
use crate::symbol::MAX_TEACHERS;

pub fn check(cx: &Ctxt, student: &Student<'_>) {
    check_required_keys(cx, student);
    check_teachers(cx, student);
    check_matches_have_pairs(cx, student);
    check_something_trains(cx, student);
    check_logits_are_used(cx, student);
}

/// `logits = ...` with `kd_weight = 0`: the chosen divergence would never be computed.
fn check_logits_are_used(cx: &Ctxt, student: &Student<'_>) {
    let attr = &student.attr;
    if let (Some(logits), Some(kd_weight)) = (&attr.logits, &attr.kd_weight) {
        if kd_weight.value.literal() == Some(0.0) {
            cx.error_at(
                logits.span,
                "`logits` chooses the divergence of the soft term, but `kd_weight = 0` turns that term off; remove one of them",
            );
        }
    }
}

/// `ce_weight = 0, kd_weight = 0` and no `match(...)`: the loss would be 0 (a run-time panic
/// before this check).
fn check_something_trains(cx: &Ctxt, student: &Student<'_>) {
    let attr = &student.attr;
    let zero =
        |weight: &Option<crate::attr::Sp<crate::attr::Number>>| weight.as_ref().filter(|w| w.value.literal() == Some(0.0)).map(|w| w.span);
    if let (Some(_), Some(kd_span)) = (zero(&attr.ce_weight), zero(&attr.kd_weight)) {
        if attr.match_entries == 0 {
            cx.error_at(
                kd_span,
                "`ce_weight` and `kd_weight` are both 0 and `match(...)` adds no term, so nothing would train; give one of them a weight or add a kind",
            );
        }
    }
}

/// `teacher` or `teachers(...)`, and what only several teachers can use.
fn check_teachers(cx: &Ctxt, student: &Student<'_>) {
    let attr = &student.attr;
    if let Some(span) = attr.teachers_span {
        if attr.teacher.is_some() {
            cx.error_at(
                span,
                "write `teacher = T` for one teacher or `teachers(a = T1, b = T2)` for several, not both",
            );
        } else if attr.teacher_entries < 2 {
            cx.error_at(span, "`teachers(...)` needs at least two teachers; for one, write `teacher = T`");
        } else if attr.teacher_entries > MAX_TEACHERS {
            cx.error_at(
                span,
                format!(
                    "`teachers(...)` takes at most {MAX_TEACHERS} teachers, got {}",
                    attr.teacher_entries
                ),
            );
        }
    }
    let several = attr.teachers_span.is_some();
    if let (Some(span), false) = (attr.teacher_weights_span, several) {
        cx.error_at(
            span,
            "`teacher_weights` weighs the teachers of `teachers(...)`; with one teacher there is nothing to weigh",
        );
    }
    if let (Some(ensemble), false) = (&attr.ensemble, several) {
        cx.error_at(
            ensemble.span,
            "`ensemble` chooses how several teachers' logits combine; it needs `teachers(a = T1, b = T2)`",
        );
    }
    if !several {
        return;
    }
    let names: Vec<String> = attr.teachers.iter().map(|t| t.name.to_string()).collect();
    let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
    for (name, _) in &attr.teacher_weights {
        if !names.iter().any(|n| name == n) {
            crate::attr::unknown(cx, "teacher", &name.to_string(), name.span(), &candidates);
        }
    }
    if let Some(span) = attr.teacher_weights_span {
        if student.teachers.len() >= 2 && student.teachers.iter().all(|t| t.weight == 0.0) {
            cx.error_at(span, "every teacher's weight is 0, so the soft term would have no target");
        }
    }
    for m in &attr.matches {
        if m.kind == Kind::Attention(crate::attr::Attention::Gradient) {
            cx.error_at(
                m.span,
                "attention(gradient) matches the input gradient of one teacher; it cannot be used with `teachers(...)`",
            );
        }
    }
}

fn check_required_keys(cx: &Ctxt, student: &Student<'_>) {
    let written = |key: &str| student.attr.written.iter().any(|k| k == key);
    if !written(crate::symbol::TEACHER) && !written(crate::symbol::TEACHERS) {
        cx.error_at(
            Span::call_site(),
            "missing `teacher = ...` in #[distill(...)]: name the teacher model, write `teacher = Self` for self-distillation, or `teachers(a = T1, b = T2)` for several",
        );
    }
    if !written(crate::symbol::INPUT) {
        cx.error_at(
            Span::call_site(),
            "missing `input = [...]` in #[distill(...)]: the shape of one sample, `[features]` or `[channels, height, width]`",
        );
    }
    if let Some(span) = student.attr.match_span {
        if student.attr.match_entries == 0 {
            cx.error_at(
                span,
                "`match(...)` names no kind of knowledge; list one or more of `features`, `attention`, `sparsity`, `relations`",
            );
        }
    }
}

/// Every kind that works on pairs needs pairs, and every pair needs a kind to use it.
fn check_matches_have_pairs(cx: &Ctxt, student: &Student<'_>) {
    // After a mistake in `match(...)` or in a field attribute, what is meant is unclear: stay quiet.
    if student.attr.match_entries != student.attr.matches.len() || student.model.fields.iter().any(|f| f.attr.had_error) {
        return;
    }
    // The container's kinds go to the pairs that name no kinds of their own.
    let on_defaults = || student.pairs.iter().filter(|p| p.uses_defaults());
    let pairs = on_defaults().count();
    let own_kinds = pairs < student.pairs.len();
    // relations(layers) relates consecutive pairs of one teacher.
    let most_with_one_teacher = (0..student.teachers.len())
        .map(|k| on_defaults().filter(|p| p.teacher_index == k).count())
        .max()
        .unwrap_or(0);
    for m in &student.attr.matches {
        let needed = m.kind.pairs_needed();
        let available = if needed == 2 { most_with_one_teacher } else { pairs };
        if available < needed {
            let message = if needed == 2 && student.has_several_teachers() {
                "this kind of knowledge relates consecutive pairs of one teacher: it needs at least two student fields paired with the same teacher (`#[distill(pair = wide.field)]`)".to_string()
            } else {
                let what = if needed == 2 {
                    "at least two student fields"
                } else {
                    "a student field"
                };
                let unless = if own_kinds {
                    " that names no kinds of its own (a field's kinds replace `match(...)` for its pair)"
                } else {
                    ""
                };
                format!("this kind of knowledge needs {what} marked `#[distill(pair)]` (or `#[distill(pair = teacher_field)]`){unless}")
            };
            cx.error_at(m.span, message);
        }
    }
    let uses_pairs = student
        .attr
        .matches
        .iter()
        .any(|m| !matches!(m.kind, Kind::Attention(crate::attr::Attention::Gradient)));
    if !uses_pairs {
        for field in student.model.fields.iter().filter(|f| f.attr.kinds.is_empty()) {
            if let Some(span) = field.attr.pair_span {
                cx.error_at(
                    span,
                    format!(
                        "field `{}` is paired, but no kind in `match(...)` uses pairs; add one, e.g. `match(features)`, or name this pair's kinds, e.g. `#[distill(pair, features)]`",
                        field.ident
                    ),
                );
            }
        }
    }
}
