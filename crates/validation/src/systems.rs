//! What the URIs that name things must be (datatypes.html §Coding, §Identifier,
//! resource.html §canonical): `Coding.system` and `Identifier.system` are absolute URIs;
//! a Coding's system names a code system, never a value set, and the R3 forms of HL7's own
//! systems (`http://hl7.org/fhir/v2/…`, `http://hl7.org/fhir/v3/…`) are retired in R4; an
//! Identifier in the `urn:ietf:rfc:3986` system has a URI as its value; a canonical
//! resource's `url` is absolute.

use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};
use tsunagu_package::ConformanceKind;

use crate::extension::is_absolute as absolute;
use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_coding_system(&mut self, node: &Node<'a>) {
        let Some(system) = node.value.and_then(|v| v.get("system")).and_then(Value::as_str) else { return };
        let loc = || format!("{}.system", self.location(node));
        if !absolute(system) {
            let loc = loc();
            return self.push(
                Severity::Error,
                IssueType::Value,
                loc,
                format!("Coding.system '{system}' is not an absolute URI"),
                format!("Coding.system '{system}' が絶対 URI ではありません"),
            );
        }
        if let Some(rest) =
            system.strip_prefix("http://hl7.org/fhir/v2/").or_else(|| system.strip_prefix("http://hl7.org/fhir/v3/"))
        {
            let table = if system.contains("/v2/") { format!("v2-{rest}") } else { format!("v3-{rest}") };
            let loc = loc();
            return self.push(
                Severity::Error,
                IssueType::CodeInvalid,
                loc,
                format!("'{system}' is the retired R3 URI; R4 names this code system http://terminology.hl7.org/CodeSystem/{table}"),
                format!("'{system}' は R3 の廃止された URI です。R4 では http://terminology.hl7.org/CodeSystem/{table} です"),
            );
        }
        let packages = &self.v.packages;
        if packages.resolve(ConformanceKind::ValueSet, system).is_some()
            && packages.resolve(ConformanceKind::CodeSystem, system).is_none()
        {
            let loc = loc();
            self.push(
                Severity::Error,
                IssueType::CodeInvalid,
                loc,
                format!("Coding.system '{system}' is a value set; a Coding names the code system of its code"),
                format!("Coding.system '{system}' は値セットです。Coding にはコードのコードシステムを指定します"),
            );
        }
    }

    pub(crate) fn check_identifier(&mut self, node: &Node<'a>) {
        let Some(id) = node.value else { return };
        let Some(system) = id.get("system").and_then(Value::as_str) else { return };
        if !absolute(system) {
            let loc = format!("{}.system", self.location(node));
            return self.push(
                Severity::Error,
                IssueType::Value,
                loc,
                format!("Identifier.system '{system}' is not an absolute URI"),
                format!("Identifier.system '{system}' が絶対 URI ではありません"),
            );
        }
        let value = id.get("value").and_then(Value::as_str);
        if let Some(value) = value.filter(|v| system == "urn:ietf:rfc:3986" && !absolute(v)) {
            let loc = format!("{}.value", self.location(node));
            self.push(
                Severity::Error,
                IssueType::Value,
                loc,
                format!("In the system urn:ietf:rfc:3986 the value is a URI; '{value}' is not (an OID is written urn:oid:…)"),
                format!("urn:ietf:rfc:3986 の値は URI です。'{value}' は URI ではありません（OID は urn:oid:… と書きます）"),
            );
        }
    }

    /// A canonical resource's `url` is "an absolute URI" (canonical resources, R4).
    pub(crate) fn check_canonical_url(&mut self, res: &'a Value, loc: &str) {
        let Some(url) = res.get("url").and_then(Value::as_str) else { return };
        let rt = res.get("resourceType").and_then(Value::as_str).unwrap_or("");
        if !crate::conformance::is_canonical_resource(rt) || absolute(url) {
            return;
        }
        self.push(
            Severity::Error,
            IssueType::Value,
            format!("{loc}.url"),
            format!("The canonical URL '{url}' of a {rt} must be absolute"),
            format!("{rt} の正規 URL '{url}' は絶対 URI でなければなりません"),
        );
    }
}
