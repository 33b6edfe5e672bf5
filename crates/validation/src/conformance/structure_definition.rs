//! StructureDefinition (R4 structuredefinition.html, profiling.html), beyond sdf-1..23
//! (which already tie snapshot paths to the type, and the first differential path):
//!
//! - `type` is a FHIR type, or an absolute URL for a logical model; a FHIR type other than
//!   the one the definition itself defines is only constrained, never specialised again
//!   (the HL7 validator's SD_TYPE_NOT_LOCAL, SD_TYPE_NOT_LOGICAL, SD_TYPE_NOT_DERIVED);
//! - a constraint has the type of its base, a specialisation another one;
//! - every element path is the type name or starts with it and a `.` (a logical model's
//!   type name being the last segment of its URL) — the cases sdf-8/8a let through: paths
//!   of logical models, and differential paths that only share a prefix (`PatientX.name`);
//! - the FHIRPath of each constraint the definition brings (all in the differential; in the
//!   snapshot, those with no `source` or its own) compiles: "Error in constraint";
//! - the differential of a constraint generates a snapshot on its loaded base with this
//!   crate's generator: a generation failure is an error ("Error generating snapshot"), a
//!   base or type profile that is not loaded a warning.

use serde_json::{Map, Value};
use tsunagu_format::IssueType;
use tsunagu_package::ConformanceKind;

use super::{items, text};
use crate::snapshot::{generate_snapshot, SnapshotError};
use crate::walk::Walk;

const CORE: &str = "http://hl7.org/fhir/StructureDefinition/";

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_structure_definition(&mut self, sd: &'a Value, loc: &str) {
        let kind = text(sd, "kind").unwrap_or("");
        let url = text(sd, "url");
        let derivation = text(sd, "derivation");
        let Some(ty) = text(sd, "type") else { return };
        let absolute = ty.contains("://") || ty.starts_with("urn:");
        self.check_sd_type(ty, absolute, kind, url, derivation, loc);
        let type_name = if absolute { ty.rsplit('/').next().unwrap_or(ty) } else { ty };
        let logical = kind == "logical";
        for list in ["snapshot", "differential"] {
            let Some(container) = sd.get(list) else { continue };
            for (i, e) in items(container, "element") {
                let Some(path) = text(e, "path") else { continue };
                let fits = path == type_name || path.strip_prefix(type_name).is_some_and(|r| r.starts_with('.'));
                // Outside logical models sdf-8 (snapshot) and sdf-8a (differential) report
                // paths that do not start with the type at all.
                let uncovered = logical || (list == "differential" && path.starts_with(type_name));
                if !fits && uncovered {
                    self.error(
                        IssueType::Invalid,
                        format!("{loc}.{list}.element[{i}].path"),
                        format!("The path {path} must start with the type of the structure ({type_name})"),
                        format!("パス {path} は構造の型（{type_name}）で始まらなければなりません"),
                    );
                }
            }
        }
        self.check_sd_constraints(sd, url, loc);
        if let Some(base_url) = text(sd, "baseDefinition") {
            self.check_sd_base(sd, ty, base_url, derivation, loc);
        }
    }

    fn check_sd_type(
        &mut self,
        ty: &str,
        absolute: bool,
        kind: &str,
        url: Option<&str>,
        derivation: Option<&str>,
        loc: &str,
    ) {
        let at = format!("{loc}.type");
        if absolute {
            if kind != "logical" {
                self.error(
                    IssueType::Invalid,
                    at,
                    format!("The type {ty} can only be defined if the kind is 'logical', not '{kind}'"),
                    format!("型 {ty} を定義できるのは kind が 'logical' の場合だけです（'{kind}' になっています）"),
                );
            }
            return;
        }
        let core_url = format!("{CORE}{ty}");
        let own = url == Some(core_url.as_str());
        let known = own
            || tsunagu_model::r4().type_def(ty).is_some()
            || self.v.packages.resolve(ConformanceKind::StructureDefinition, &core_url).is_some();
        if !known {
            self.error(
                IssueType::Invalid,
                at,
                format!(
                    "The type {ty} is not defined in the FHIR specification; other types (logical models) must be \
                     absolute URLs"
                ),
                format!("型 {ty} は FHIR 仕様で定義されていません。それ以外の型（論理モデル）は絶対 URL でなければなりません"),
            );
        } else if !own && derivation != Some("constraint") {
            self.error(
                IssueType::Invalid,
                at,
                format!("The type {ty} can only be used as a type when constraining the base definition of the type"),
                format!("型 {ty} は、その型の基底定義を制約する（derivation = constraint）場合にしか使えません"),
            );
        }
    }

    /// The constraints this definition brings compile as FHIRPath.
    fn check_sd_constraints(&mut self, sd: &'a Value, url: Option<&str>, loc: &str) {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for list in ["differential", "snapshot"] {
            let Some(container) = sd.get(list) else { continue };
            for (i, e) in items(container, "element") {
                for (j, c) in items(e, "constraint") {
                    let (Some(key), Some(expr)) = (text(c, "key"), text(c, "expression")) else { continue };
                    let own = match text(c, "source") {
                        None => true,
                        Some(source) => Some(super::unversioned(source)) == url,
                    };
                    if (list == "snapshot" && !own)
                        || seen.contains(&(key, expr))
                        || crate::native::NATIVE_CONSTRAINTS.contains(&key)
                    {
                        continue;
                    }
                    seen.push((key, expr));
                    if let Err(err) = tsunagu_fhirpath::compile(expr) {
                        self.error(
                            IssueType::Invalid,
                            format!("{loc}.{list}.element[{i}].constraint[{j}].expression"),
                            format!("Error in constraint '{key}' with expression '{expr}': {err}"),
                            format!("制約 '{key}' の式 '{expr}' に誤りがあります: {err}"),
                        );
                    }
                }
            }
        }
    }

    fn check_sd_base(&mut self, sd: &'a Value, ty: &str, base_url: &str, derivation: Option<&str>, loc: &str) {
        let at = format!("{loc}.baseDefinition");
        let Some(base) = self.v.packages.resolve(ConformanceKind::StructureDefinition, base_url).cloned() else {
            self.warning(
                IssueType::Invalid,
                at,
                format!("The base definition {base_url} is not loaded, so the differential was not checked against it"),
                format!("基底定義 {base_url} が読み込まれていないため、差分（differential）を検証していません"),
            );
            return;
        };
        let base_type = text(&base, "type").unwrap_or("");
        match derivation {
            Some("constraint") if base_type != ty => self.error(
                IssueType::Invalid,
                format!("{loc}.type"),
                format!(
                    "The type {ty} must be the type of the base structure {base_url} that it constrains ({base_type})"
                ),
                format!("型 {ty} は制約する基底構造 {base_url} の型（{base_type}）と同じでなければなりません"),
            ),
            Some("specialization") if base_type == ty => self.error(
                IssueType::Invalid,
                format!("{loc}.type"),
                format!("The type {ty} must not be the type of the base structure {base_url} that it specialises"),
                format!("型 {ty} は特殊化する基底構造 {base_url} の型と同じであってはなりません"),
            ),
            _ => {}
        }
        if derivation != Some("constraint") || base_type != ty {
            return;
        }
        let has_differential =
            sd.pointer("/differential/element").and_then(Value::as_array).is_some_and(|l| !l.is_empty());
        let Some(object) = sd.as_object().filter(|_| has_differential) else { return };
        // The definition as if published with its differential alone.
        let differential_only: Map<String, Value> =
            object.iter().filter(|(k, _)| k.as_str() != "snapshot").map(|(k, v)| (k.clone(), v.clone())).collect();
        match generate_snapshot(&Value::Object(differential_only), &self.v.packages) {
            Ok(_) => {}
            Err(SnapshotError::Missing { needed, .. }) => self.warning(
                IssueType::Invalid,
                format!("{loc}.differential"),
                format!("The snapshot could not be generated from the differential: {needed} is not loaded"),
                format!("{needed} が読み込まれていないため、差分からスナップショットを生成できませんでした"),
            ),
            Err(e) => self.error(
                IssueType::Invalid,
                format!("{loc}.differential"),
                format!("Error generating the snapshot: {e} (this usually arises from a problem in the differential)"),
                format!("スナップショットの生成でエラーになりました: {e}（通常は差分の誤りによるものです）"),
            ),
        }
    }
}
