//! The checks made at one instance node against one element rule: cardinality, fixed and
//! pattern values, narrowed types, reference targets, bindings, code-system membership,
//! invariants (those checked natively are in `native.rs`).

use serde_json::Value;
use tsunagu_fhirpath::{Item, Node};
use tsunagu_format::{IssueType, Severity};

use crate::profile::{ElementRule, Strength};
use crate::slicing::{matches_fixed, matches_pattern};
use crate::terminology::Membership;
use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_count(
        &mut self,
        rule: &ElementRule,
        count: usize,
        parent: &Node<'a>,
        name: &str,
        slice: Option<&str>,
    ) {
        let too_few = count < rule.min as usize;
        let too_many = rule.max.is_some_and(|m| count > m as usize);
        if !too_few && !too_many {
            return;
        }
        let (what_en, what_ja) = match slice {
            Some(s) => (format!("{name} (slice '{s}')"), format!("{name}（スライス '{s}'）")),
            None => (name.to_owned(), name.to_owned()),
        };
        let loc = format!("{}.{name}", self.location(parent));
        if too_few {
            self.push(
                Severity::Error,
                IssueType::Required,
                loc.clone(),
                format!("{what_en}: minimum required = {}, but only found {count} ({})", rule.min, rule.id),
                format!("{what_ja}: 最低 {} 個必要ですが、{count} 個しかありません（{}）", rule.min, rule.id),
            );
        }
        if let Some(max) = rule.max.filter(|_| too_many) {
            self.push(
                Severity::Error,
                IssueType::Invalid,
                loc,
                format!("{what_en}: maximum allowed = {max}, but found {count} ({})", rule.id),
                format!("{what_ja}: 最大 {max} 個までですが、{count} 個あります（{}）", rule.id),
            );
        }
    }

    pub(crate) fn check_value(&mut self, rule: &ElementRule, node: &Node<'a>) {
        let actual = node.value;
        if let Some(fixed) = &rule.fixed {
            if !actual.is_some_and(|a| matches_fixed(fixed, a)) {
                let loc = self.location(node);
                self.push(
                    Severity::Error,
                    IssueType::Value,
                    loc,
                    format!("Value must be exactly {fixed} ({})", rule.id),
                    format!("値は {fixed} でなければなりません（{}）", rule.id),
                );
            }
        }
        if let Some(pattern) = &rule.pattern {
            if !actual.is_some_and(|a| matches_pattern(pattern, a)) {
                let loc = self.location(node);
                self.push(
                    Severity::Error,
                    IssueType::Value,
                    loc,
                    format!("Value must match the pattern {pattern} ({})", rule.id),
                    format!("値がパターン {pattern} に一致しません（{}）", rule.id),
                );
            }
        }
    }

    pub(crate) fn check_type(&mut self, rule: &ElementRule, node: &Node<'a>) {
        if rule.types.is_empty() || node.fhir_type.is_empty() {
            return;
        }
        let model = tsunagu_model::r4();
        let actual = node.type_name();
        let ok = rule.types.iter().any(|t| {
            t.code.starts_with("http://hl7.org/fhirpath/System.")
                || t.code == actual
                || model.is_subtype(actual, &t.code)
        });
        if !ok {
            let allowed: Vec<&str> = rule.types.iter().map(|t| t.code.as_str()).collect();
            let loc = self.location(node);
            self.push(
                Severity::Error,
                IssueType::Structure,
                loc,
                format!("Type {actual} is not allowed here; the profile allows {} ({})", allowed.join(", "), rule.id),
                format!(
                    "型 {actual} はここでは使えません。プロファイルが許す型: {}（{}）",
                    allowed.join(", "),
                    rule.id
                ),
            );
        }
    }

    pub(crate) fn check_binding(&mut self, strength: Strength, vs: &str, node: &Node<'a>) {
        if strength == Strength::Example {
            return;
        }
        let Some(json) = node.value else { return };
        let codings: Vec<(Option<&str>, &str)> = match node.type_name() {
            "code" => json.as_str().map(|c| (None, c)).into_iter().collect(),
            "Coding" => coding_pair(json).into_iter().collect(),
            "CodeableConcept" => {
                json.get("coding").and_then(Value::as_array).into_iter().flatten().filter_map(coding_pair).collect()
            }
            _ => return,
        };
        if codings.is_empty() {
            return;
        }
        let terminology = &self.v.terminology;
        let Some(expansion) = terminology.expand(&self.v.packages, vs) else {
            if strength == Strength::Required {
                let loc = self.location(node);
                self.push(
                    Severity::Warning,
                    IssueType::CodeInvalid,
                    loc,
                    format!("Value set {vs} is not loaded; the required code could not be checked"),
                    format!("値セット {vs} が読み込まれていないため、必須バインディングのコードを検証できません"),
                );
            }
            return;
        };
        let results: Vec<Membership> =
            codings.iter().map(|(s, c)| self.v.service_membership(vs, *s, c, expansion.member(*s, c))).collect();
        let verdict = if results.contains(&Membership::In) {
            Membership::In
        } else if results.contains(&Membership::Unknown) {
            Membership::Unknown
        } else {
            Membership::NotIn
        };
        let shown: Vec<String> = codings
            .iter()
            .map(|(s, c)| match s {
                Some(s) => format!("{s}#{c}"),
                None => (*c).to_owned(),
            })
            .collect();
        let shown = shown.join(", ");
        let (severity, en, ja) = match (strength, verdict) {
            (_, Membership::In) => return,
            (Strength::Required, Membership::NotIn) => (
                Severity::Error,
                format!("The code {shown} is not in the required value set {vs}"),
                format!("コード {shown} は必須の値セット {vs} に含まれていません"),
            ),
            (Strength::Required, Membership::Unknown) => (
                Severity::Warning,
                format!("The code {shown} could not be checked against the required value set {vs}: its code system is not available"),
                format!("コード {shown} を必須の値セット {vs} と照合できません（コードシステムが利用できません）"),
            ),
            (_, Membership::NotIn) => (
                Severity::Warning,
                format!("The code {shown} is not in the value set {vs} (binding strength {})", if strength == Strength::Extensible { "extensible" } else { "preferred" }),
                format!("コード {shown} は値セット {vs} に含まれていません"),
            ),
            (_, Membership::Unknown) => return,
        };
        let loc = self.location(node);
        self.push(severity, IssueType::CodeInvalid, loc, en, ja);
    }

    /// A Coding whose system is a loaded, complete CodeSystem must use one of its codes,
    /// whatever the binding.
    pub(crate) fn check_coding_defined(&mut self, node: &Node<'a>) {
        if node.type_name() != "Coding" {
            return;
        }
        let Some((Some(system), code)) = node.value.and_then(coding_pair) else {
            return;
        };
        let defined = self.v.terminology.code_system_defines(&self.v.packages, system, code);
        if defined == Some(false) || (defined.is_none() && self.v.service_defines(system, code) == Some(false)) {
            let loc = self.location(node);
            self.push(
                Severity::Error,
                IssueType::CodeInvalid,
                loc,
                format!("The code {code} is not defined in the code system {system}"),
                format!("コード {code} はコードシステム {system} に定義されていません"),
            );
        }
    }

    pub(crate) fn check_constraints(&mut self, rule: &ElementRule, node: &Node<'a>, res: &'a Value) {
        for c in &rule.constraints {
            let outcome = c.expression.evaluate_on(Item::Node(*node), res, Some(self.ctx));
            let passed = match outcome {
                Ok(items) => match items.as_slice() {
                    [] => true,
                    [Item::Boolean(b)] => *b,
                    [i] => !matches!(i.json(), Some(Value::Bool(false))),
                    _ => false,
                },
                Err(e) => {
                    let loc = self.location(node);
                    // Too costly to check is not passed: an error-level constraint the
                    // resource makes too costly to evaluate refuses it (else padding a
                    // resource would slip it past its profile).
                    let (severity, code) = match e.kind() {
                        tsunagu_fhirpath::ErrorKind::Limit if c.error => (Severity::Error, IssueType::TooCostly),
                        _ => (Severity::Warning, IssueType::Invalid),
                    };
                    self.push(
                        severity,
                        code,
                        loc,
                        format!("Constraint {} could not be evaluated: {e}", c.key),
                        format!("制約 {} を評価できませんでした: {e}", c.key),
                    );
                    continue;
                }
            };
            if !passed {
                let loc = self.location(node);
                let severity = if c.error { Severity::Error } else { Severity::Warning };
                self.push(
                    severity,
                    IssueType::Invalid,
                    loc,
                    format!("Constraint failed: {}: {} ({})", c.key, c.human, rule.id),
                    format!("制約 {} を満たしていません: {}（{}）", c.key, c.human, rule.id),
                );
            }
        }
    }
}

fn coding_pair(v: &Value) -> Option<(Option<&str>, &str)> {
    let code = v.get("code")?.as_str()?;
    Some((v.get("system").and_then(Value::as_str), code))
}
