//! OperationDefinition (R4 operationdefinition.html), beyond opd-1 (a type or parts),
//! opd-2 (`searchType` only on string parameters), opd-3 (`targetProfile` only on Reference
//! and canonical) and the required bindings that make `resource` a resource type,
//! `parameter.type` a FHIR type name and `searchType` a search parameter type:
//!
//! - a parameter with `part`s has no `type`: "if there is no stated parameter, then the
//!   parameter is a multi-part parameter", and a Parameters parameter carries one and only
//!   one of a value, a resource or parts (Parameters inv-1), so a typed parameter with parts
//!   cannot be sent;
//! - `max` is a number or `*`, and not below `min`;
//! - `binding` is for coded parameters ("Binds to a value set if this parameter is coded
//!   (code, Coding, CodeableConcept)"; a warning elsewhere);
//! - `inputProfile` / `outputProfile`, when loaded, constrain Parameters (the HL7
//!   validator's rule); not loaded: a warning.

use serde_json::Value;
use tsunagu_format::IssueType;
use tsunagu_package::ConformanceKind;

use super::{items, text};
use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_operation_definition(&mut self, od: &'a Value, loc: &str) {
        self.check_parameters(od, loc);
        for key in ["inputProfile", "outputProfile"] {
            let Some(url) = text(od, key) else { continue };
            let at = format!("{loc}.{key}");
            let Some(sd) = self.expect_canonical(ConformanceKind::StructureDefinition, url, at.clone()) else {
                continue;
            };
            let ty = text(&sd, "type").unwrap_or("");
            if ty != "Parameters" {
                self.error(
                    IssueType::Invalid,
                    at,
                    format!("The {key} {url} is a profile on {ty}; it must constrain Parameters"),
                    format!("{key} {url} は {ty} のプロファイルです。Parameters を制約するものでなければなりません"),
                );
            }
        }
    }

    /// The parameters (or parts) of `owner`, recursively.
    fn check_parameters(&mut self, owner: &'a Value, loc: &str) {
        let key = if owner.get("resourceType").is_some() { "parameter" } else { "part" };
        for (i, p) in items(owner, key) {
            let at = format!("{loc}.{key}[{i}]");
            let name = text(p, "name").unwrap_or("");
            let ty = text(p, "type");
            let has_parts = items(p, "part").next().is_some();
            if let (Some(ty), true) = (ty, has_parts) {
                self.error(
                    IssueType::Invalid,
                    at.clone(),
                    format!(
                        "Parameter '{name}' has both a type ({ty}) and parts; a multi-part parameter has no type \
                         (a Parameters parameter carries a value, a resource or parts, never two)"
                    ),
                    format!(
                        "パラメータ '{name}' に type（{ty}）と part の両方があります。複数パートのパラメータには type を指定しません\
                         （Parameters のパラメータは値・リソース・パートのいずれか一つだけを持ちます）"
                    ),
                );
            }
            self.check_parameter_max(p, name, &at);
            if p.get("binding").is_some() {
                if let Some(ty) = ty.filter(|t| !matches!(*t, "code" | "Coding" | "CodeableConcept")) {
                    self.warning(
                        IssueType::Invalid,
                        format!("{at}.binding"),
                        format!(
                            "Parameter '{name}' has a binding but is of type {ty}; bindings are for coded parameters \
                             (code, Coding, CodeableConcept)"
                        ),
                        format!(
                            "パラメータ '{name}' の型は {ty} ですが binding があります。binding はコード型（code・Coding・CodeableConcept）のパラメータのためのものです"
                        ),
                    );
                }
            }
            if has_parts {
                self.check_parameters(p, &at);
            }
        }
    }

    fn check_parameter_max(&mut self, p: &Value, name: &str, at: &str) {
        let Some(max) = text(p, "max") else { return };
        if max == "*" {
            return;
        }
        let Ok(n) = max.parse::<u64>() else {
            self.error(
                IssueType::Value,
                format!("{at}.max"),
                format!("Parameter '{name}' has max '{max}'; it must be a number or '*'"),
                format!("パラメータ '{name}' の max '{max}' は数値か '*' でなければなりません"),
            );
            return;
        };
        let min = p.get("min").and_then(Value::as_u64).unwrap_or(0);
        if n < min {
            self.error(
                IssueType::Invalid,
                format!("{at}.max"),
                format!("Parameter '{name}' has max {n} below its min {min}"),
                format!("パラメータ '{name}' の max {n} が min {min} より小さくなっています"),
            );
        }
    }
}
