//! Reference targets: the type a Reference points to must be one its `targetProfile`s
//! allow, and when the target is at hand (contained, or an entry of the Bundle being
//! validated) it must conform to one of those profiles.

use std::sync::Arc;

use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};

use crate::profile::ElementRule;
use crate::terminology::strip_version;
use crate::validator::declared_profiles;
use crate::walk::Walk;

/// How deep target-profile checks nest (a target's own references are checked with it):
/// enough for document Bundles, and a stop for reference cycles.
const MAX_TARGET_DEPTH: u8 = 2;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_reference_target(&mut self, rule: &ElementRule, node: &Node<'a>) {
        if node.type_name() != "Reference" {
            return;
        }
        let targets: Vec<&str> = rule
            .types
            .iter()
            .filter(|t| t.code == "Reference")
            .flat_map(|t| t.target_profiles.iter().map(String::as_str))
            .collect();
        if targets.is_empty() {
            return;
        }
        let Some(reference) = node.value.and_then(|v| v.get("reference")).and_then(Value::as_str) else {
            return;
        };
        let model = tsunagu_model::r4();
        let resolved = self.resolver.find(reference);
        let target_type = match resolved {
            Some(r) => r.get("resourceType").and_then(Value::as_str).map(str::to_owned),
            None if reference.starts_with('#') || reference.starts_with("urn:") => None,
            None => {
                // `Type/id` or `…/Type/id[/_history/v]`.
                let parts: Vec<&str> = reference.split('/').collect();
                let at = parts.iter().rposition(|p| model.is_resource_type(p));
                at.filter(|&i| i + 1 < parts.len()).map(|i| parts[i].to_owned())
            }
        };
        let Some(target_type) = target_type else { return };
        self.check_declared_type(node, &target_type);
        let mut allowed = Vec::new();
        let mut fitting = Vec::new();
        for url in &targets {
            let ty = match self.v.profile(url) {
                Some(p) => p.type_name.clone(),
                // Unloaded core profiles name their type last.
                None => url.rsplit('/').next().unwrap_or("").to_owned(),
            };
            if ty == target_type || ty == "Resource" || model.is_subtype(&target_type, &ty) {
                fitting.push(*url);
            } else {
                allowed.push(ty);
            }
        }
        if fitting.is_empty() {
            let loc = self.location(node);
            let allowed = allowed.join(", ");
            self.push(
                Severity::Error,
                IssueType::Structure,
                loc,
                format!("This reference points to a {target_type}, but only {allowed} is allowed here ({})", rule.id),
                format!("この参照先は {target_type} ですが、ここで許される参照先は {allowed} です（{}）", rule.id),
            );
            return;
        }
        if let Some(target) = resolved {
            self.check_target_conforms(rule, node, target, &fitting);
        }
    }

    /// `Reference.type` "SHALL be the same as" the type of the target when a literal
    /// reference is given (references.html#Reference; `Patient` means the core
    /// StructureDefinition of that name).
    fn check_declared_type(&mut self, node: &Node<'a>, target_type: &str) {
        let Some(declared) = node.value.and_then(|v| v.get("type")).and_then(Value::as_str) else { return };
        let declared_type = declared.strip_prefix("http://hl7.org/fhir/StructureDefinition/").unwrap_or(declared);
        if declared_type == target_type || tsunagu_model::r4().is_subtype(target_type, declared_type) {
            return;
        }
        let loc = format!("{}.type", self.location(node));
        self.push(
            Severity::Error,
            IssueType::Invalid,
            loc,
            format!("Reference.type is {declared}, but the reference points to a {target_type}"),
            format!("Reference.type は {declared} ですが、参照先は {target_type} です"),
        );
    }

    /// The resolved target must conform to one of the fitting target profiles. The base
    /// definition of its type needs no check here (the target is validated in its own
    /// right); a target that declares one of the profiles is validated against it anyway.
    fn check_target_conforms(&mut self, rule: &ElementRule, node: &Node<'a>, target: &'a Value, fitting: &[&str]) {
        if self.depth >= MAX_TARGET_DEPTH {
            return;
        }
        let profiled: Vec<&str> = fitting
            .iter()
            .copied()
            .filter(|u| !strip_version(u).starts_with("http://hl7.org/fhir/StructureDefinition/"))
            .collect();
        if profiled.len() < fitting.len() || profiled.is_empty() {
            return;
        }
        let declared = declared_profiles(target);
        if profiled.iter().any(|u| declared.iter().any(|d| strip_version(d) == strip_version(u))) {
            return;
        }
        let mut loaded = false;
        for url in &profiled {
            let Some(tp) = self.v.profile(url) else { continue };
            loaded = true;
            let key = (target as *const Value as usize, Arc::as_ptr(&tp) as usize);
            let conforms = match self.conformance.get(&key) {
                Some(c) => *c,
                None => {
                    let mut sub = self.sub_walk();
                    sub.check_node(&tp, 0, Node::resource(target), target);
                    let ok = !sub.issues.iter().any(|i| i.severity == Severity::Error);
                    self.conformance.insert(key, ok);
                    ok
                }
            };
            if conforms {
                return;
            }
        }
        if !loaded {
            return;
        }
        let loc = self.location(node);
        let list = profiled.join(", ");
        self.push(
            Severity::Error,
            IssueType::Structure,
            loc,
            format!("The referenced resource does not conform to any of its target profiles {list} ({})", rule.id),
            format!("参照先のリソースが、いずれの参照先プロファイル {list} にも適合しません（{}）", rule.id),
        );
    }
}
