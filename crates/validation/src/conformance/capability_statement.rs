//! CapabilityStatement (R4 capabilitystatement.html): what its canonicals point to, when
//! the loaded packages carry them. The resource types and interaction codes are required
//! bindings, and cpb-* cover the rest of its shape.
//!
//! - `rest.resource.profile` and `supportedProfile` are StructureDefinitions of that
//!   resource type ("the profile applies to all resources of this type");
//! - `rest.resource.searchParam.definition` and `rest.searchParam.definition` are
//!   SearchParameters whose type is the one stated ("It SHALL be the same as the type in
//!   the search parameter definition", the HL7 validator's error), and, for a resource,
//!   one defined on it (a warning);
//! - `document.profile` is a StructureDefinition of a Bundle;
//! - `rest.resource.operation.definition` is not loaded as anything else (the packages
//!   hold no OperationDefinitions, so only a wrong kind can be told).
//!
//! A canonical of another kind is an error; one the packages do not carry, a warning.

use serde_json::Value;
use tsunagu_format::IssueType;
use tsunagu_package::ConformanceKind;

use super::{items, text};
use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_capability_statement(&mut self, cs: &'a Value, loc: &str) {
        for (r, rest) in items(cs, "rest") {
            let rest_loc = format!("{loc}.rest[{r}]");
            for (i, res) in items(rest, "resource") {
                let res_loc = format!("{rest_loc}.resource[{i}]");
                let ty = text(res, "type");
                if let Some(url) = text(res, "profile") {
                    self.check_profile_type(url, ty, format!("{res_loc}.profile"));
                }
                for (k, p) in items(res, "supportedProfile") {
                    if let Some(url) = p.as_str() {
                        self.check_profile_type(url, ty, format!("{res_loc}.supportedProfile[{k}]"));
                    }
                }
                for (k, sp) in items(res, "searchParam") {
                    self.check_capability_search_param(sp, ty, format!("{res_loc}.searchParam[{k}]"));
                }
                for (k, op) in items(res, "operation") {
                    self.check_operation_kind(op, format!("{res_loc}.operation[{k}].definition"));
                }
            }
            for (k, sp) in items(rest, "searchParam") {
                self.check_capability_search_param(sp, None, format!("{rest_loc}.searchParam[{k}]"));
            }
            for (k, op) in items(rest, "operation") {
                self.check_operation_kind(op, format!("{rest_loc}.operation[{k}].definition"));
            }
        }
        for (d, doc) in items(cs, "document") {
            if let Some(url) = text(doc, "profile") {
                self.check_profile_type(url, Some("Bundle"), format!("{loc}.document[{d}].profile"));
            }
        }
    }

    /// A profile canonical: a StructureDefinition constraining `ty`.
    fn check_profile_type(&mut self, url: &str, ty: Option<&str>, at: String) {
        let Some(sd) = self.expect_canonical(ConformanceKind::StructureDefinition, url, at.clone()) else {
            return;
        };
        let (Some(ty), Some(sd_type)) = (ty, text(&sd, "type")) else { return };
        if sd_type != ty {
            self.error(
                IssueType::Invalid,
                at,
                format!("The profile {url} is for {sd_type}, not {ty}"),
                format!("プロファイル {url} は {sd_type} 用であり、{ty} 用ではありません"),
            );
        }
    }

    fn check_capability_search_param(&mut self, sp: &Value, resource_type: Option<&str>, at: String) {
        let Some(url) = text(sp, "definition") else { return };
        let Some(def) = self.expect_canonical(ConformanceKind::SearchParameter, url, format!("{at}.definition")) else {
            return;
        };
        let name = text(sp, "name").unwrap_or("");
        if let (Some(stated), Some(defined)) = (text(sp, "type"), text(&def, "type")) {
            if stated != defined {
                self.error(
                    IssueType::Invalid,
                    format!("{at}.type"),
                    format!(
                        "Search parameter '{name}' is stated as {stated}, but its definition {url} has the type \
                         {defined}; it SHALL be the same"
                    ),
                    format!(
                        "検索パラメータ '{name}' の type は {stated} ですが、定義 {url} の type は {defined} です。同じでなければなりません"
                    ),
                );
            }
        }
        let Some(rt) = resource_type else { return };
        let bases: Vec<&str> = items(&def, "base").filter_map(|(_, b)| b.as_str()).collect();
        let applies = bases.iter().any(|b| *b == rt || *b == "Resource" || *b == "DomainResource");
        if !bases.is_empty() && !applies {
            self.warning(
                IssueType::Invalid,
                format!("{at}.definition"),
                format!("Search parameter '{name}' is defined for {} ({url}), not for {rt}", bases.join(", ")),
                format!(
                    "検索パラメータ '{name}' の定義（{url}）は {} 用であり、{rt} 用ではありません",
                    bases.join(", ")
                ),
            );
        }
    }

    fn check_operation_kind(&mut self, op: &Value, at: String) {
        let Some(url) = text(op, "definition") else { return };
        let found = ConformanceKind::ALL.into_iter().find(|k| self.v.packages.resolve(*k, url).is_some());
        if let Some(kind) = found {
            let kind = kind.as_str();
            self.error(
                IssueType::Invalid,
                at,
                format!("'{url}' is a {kind} in the loaded packages, not an OperationDefinition"),
                format!("'{url}' は読み込まれたパッケージでは {kind} であり、OperationDefinition ではありません"),
            );
        }
    }
}
