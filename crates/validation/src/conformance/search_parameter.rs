//! SearchParameter (R4 searchparameter.html), beyond its invariants spd-0..2 and the
//! required bindings on `base`, `target` and `type` (which already make every base and
//! target a resource type):
//!
//! - `expression` and each `component.expression` compile as FHIRPath (an error otherwise,
//!   the HL7 validator's "Error in search expression");
//! - a `composite` parameter defines two or more components (the HL7 validator's rule: a
//!   composite combines parameters);
//! - `derivedFrom` ("the details in the search parameter must be consistent with the
//!   definition from which it is defined"), when loaded: the same `type`, every `base` one
//!   of its bases unless it is defined on `Resource` (errors), and an expression that
//!   selects the same paths for those bases (a warning); not loaded: a warning.

use serde_json::Value;
use tsunagu_format::IssueType;
use tsunagu_package::ConformanceKind;

use super::{items, text};
use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_search_parameter(&mut self, sp: &'a Value, loc: &str) {
        if let Some(expr) = text(sp, "expression") {
            self.check_search_expression(expr, format!("{loc}.expression"));
        }
        for (i, c) in items(sp, "component") {
            if let Some(expr) = text(c, "expression") {
                self.check_search_expression(expr, format!("{loc}.component[{i}].expression"));
            }
        }
        let ty = text(sp, "type");
        if ty == Some("composite") {
            let n = items(sp, "component").count();
            if n < 2 {
                self.error(
                    IssueType::Invalid,
                    loc.to_owned(),
                    format!("A composite search parameter must define two or more components (it has {n})"),
                    format!("複合（composite）検索パラメータには 2 つ以上の component が必要です（{n} 個）"),
                );
            }
        }
        if let Some(master) = text(sp, "derivedFrom") {
            self.check_derived_from(sp, master, ty, loc);
        }
    }

    fn check_search_expression(&mut self, expr: &str, loc: String) {
        if let Err(e) = tsunagu_fhirpath::compile(expr) {
            self.error(
                IssueType::Invalid,
                loc,
                format!("Error in search expression '{expr}': {e}"),
                format!("検索式 '{expr}' に誤りがあります: {e}"),
            );
        }
    }

    fn check_derived_from(&mut self, sp: &'a Value, master: &str, ty: Option<&str>, loc: &str) {
        let at = format!("{loc}.derivedFrom");
        let Some(base_sp) = self.expect_canonical(ConformanceKind::SearchParameter, master, at) else {
            return;
        };
        let master_bases: Vec<&str> = items(&base_sp, "base").filter_map(|(_, b)| b.as_str()).collect();
        let bases: Vec<&str> = items(sp, "base").filter_map(|(_, b)| b.as_str()).collect();
        if !master_bases.contains(&"Resource") {
            for (i, b) in items(sp, "base") {
                let Some(b) = b.as_str() else { continue };
                if !master_bases.contains(&b) {
                    self.error(
                        IssueType::Invalid,
                        format!("{loc}.base[{i}]"),
                        format!(
                            "The resource type {b} is not a base of the search parameter this one is derived from \
                             ({master}: {})",
                            master_bases.join(", ")
                        ),
                        format!(
                            "リソース型 {b} は派生元の検索パラメータ（{master}: {}）の base に含まれていません",
                            master_bases.join(", ")
                        ),
                    );
                }
            }
        }
        let master_type = text(&base_sp, "type");
        if let (Some(t), Some(mt)) = (ty, master_type) {
            if t != mt {
                self.error(
                    IssueType::Invalid,
                    format!("{loc}.type"),
                    format!(
                        "The type {t} differs from the type {mt} of the search parameter it is derived from ({master})"
                    ),
                    format!("type {t} が派生元の検索パラメータ（{master}）の type {mt} と異なります"),
                );
            }
        }
        if let (Some(e), Some(me)) = (text(sp, "expression"), text(&base_sp, "expression")) {
            if e != me && canonical_paths(e, &bases) != canonical_paths(me, &bases) {
                self.warning(
                    IssueType::Invalid,
                    format!("{loc}.expression"),
                    format!(
                        "The expression '{e}' is not compatible with the expression '{me}' of the search parameter \
                         it is derived from ({master}), which suggests the derivation is not valid"
                    ),
                    format!(
                        "式 '{e}' は派生元の検索パラメータ（{master}）の式 '{me}' と整合せず、派生関係が正しくない可能性があります"
                    ),
                );
            }
        }
    }
}

/// An expression made of paths joined by `|`, as the sorted paths that apply to `bases`
/// (paths that start with another resource type dropped); any other expression as itself.
fn canonical_paths(expr: &str, bases: &[&str]) -> Vec<String> {
    let model = tsunagu_model::r4();
    let mut parts = Vec::new();
    for part in split_union(expr) {
        let part = part.trim();
        let inner = part.strip_prefix('(').and_then(|p| p.strip_suffix(')')).unwrap_or(part).trim();
        let lead = inner.split(['.', '(', ' ']).next().unwrap_or("");
        if model.is_resource_type(lead) && !bases.contains(&lead) {
            continue;
        }
        parts.push(inner.to_owned());
    }
    parts.sort();
    parts
}

/// The operands of the top-level `|` operators (not inside parentheses or quotes).
fn split_union(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0usize);
    for (i, c) in expr.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '`' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, '|') if depth == 0 => {
                out.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&expr[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_operands_compare_regardless_of_order_and_other_bases() {
        let a = canonical_paths("Patient.name | Practitioner.name", &["Patient"]);
        let b = canonical_paths("(Patient.name)", &["Patient"]);
        assert_eq!(a, b);
        assert_ne!(canonical_paths("Patient.name.family", &["Patient"]), b);
        assert_eq!(split_union("a.where(b = 'x|y') | c"), vec!["a.where(b = 'x|y') ", " c"]);
    }
}
