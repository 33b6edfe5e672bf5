//! De-identification of FHIR resources (bulk export with `_deidentify=default`).
//!
//! This crate owns the de-identification *policy* ([`Policy`]) and its application to one
//! resource at a time ([`Deidentifier::deidentify`]), as pure functions over
//! `serde_json::Value`, plus the k-anonymity count over the kept quasi-identifiers
//! ([`KAnonymity`]). It never does I/O: the secret key and the per-export salt are handed
//! in by the caller (the interaction layer keeps the key in `<data>/export/deid.key`), and
//! it never decides who may export what.
//!
//! What the default policy does to a resource (applied everywhere in it, contained
//! resources and Bundle entries included):
//!
//! - **removed**: `HumanName`s (any complex `name`), `telecom`, `photo`, the narrative
//!   `text`, `note` (Annotation), the free-text strings `comment`, `patientInstruction` and
//!   `description` (when a string), the data, URL, title and hash of every Attachment, the
//!   `data` of a Binary, the `display` of every Reference (an object with a `display` but no
//!   `code` or `system`), `meta` except `meta.profile` (tags may carry person keys);
//! - **kept**: codes and `CodeableConcept.text` (coded meaning, not a narrative), other
//!   strings (`valueString` and extension strings stay: a known limitation);
//! - **addresses**: only `country` and the first [`Policy::postal_prefix_digits`] digits of
//!   `postalCode` remain;
//! - **pseudonyms**: the resource id, every `Identifier.value` and every `urn:uuid:` are
//!   replaced by HMAC-SHA256 pseudonyms keyed by the secret and, unless
//!   [`Policy::stable_across_exports`], salted per export; references (`Type/id`,
//!   `Type/id/_history/n`, absolute URLs under the server's base) are rewritten to the
//!   pseudonymous id so they still resolve inside the export; references elsewhere
//!   (another server, conditional) are dropped; local `#id` references stay;
//! - **dates**: every full date (`YYYY-MM-DD…`) is shifted by a per-patient offset in
//!   days (HMAC-derived, within ±[`DateRule::Shift`]`.max_days`, the patient found from the
//!   resource's own id for a Patient, else its first reference to a Patient), or truncated
//!   to the year ([`DateRule::Year`]); partial dates (year, year-month) stay as they are;
//! - **birthDate**: the year only; a person older than [`Policy::max_age_years`] at the
//!   export's reference year gets the sentinel year `reference_year - (max_age_years + 1)`,
//!   so every such person shares one birth year (the "90 or older" band).

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// How dates are made less precise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateRule {
    /// Shift every full date by the patient's secret offset, within ± `max_days`.
    Shift { max_days: i64 },
    /// Keep only the year of every full date.
    Year,
}

/// A de-identification policy. `Policy::default()` is the built-in `default` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The name the manifest reports (`default`).
    pub name: String,
    /// Digits of `postalCode` kept (3: a Japanese 〒 area, a US ZIP3).
    pub postal_prefix_digits: usize,
    pub dates: DateRule,
    /// Older than this at the reference year: birth year replaced by the sentinel band.
    pub max_age_years: i32,
    /// Pseudonyms equal across exports (no per-export salt): lets a researcher link
    /// exports, and lets anyone holding two exports link them too.
    pub stable_across_exports: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            name: "default".into(),
            postal_prefix_digits: 3,
            dates: DateRule::Shift { max_days: 180 },
            max_age_years: 89,
            stable_across_exports: false,
        }
    }
}

impl Policy {
    /// The policy named `name` (only `default` so far).
    pub fn named(name: &str) -> Option<Policy> {
        (name == "default").then(Policy::default)
    }
}

/// Free-text string elements removed wherever they occur.
const FREE_TEXT: [&str; 3] = ["comment", "patientInstruction", "description"];

/// The quasi-identifiers of a de-identified Patient, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuasiIdentifiers {
    pub birth_year: Option<String>,
    pub gender: Option<String>,
    pub postal_prefix: Option<String>,
}

/// Applies one policy within one export.
pub struct Deidentifier {
    policy: Policy,
    mac: Hmac<Sha256>,
    base: String,
    reference_year: i32,
}

impl Deidentifier {
    /// `key`: the server's secret; `salt`: this export's (ignored when the policy is stable
    /// across exports); `base`: the server's base URL (absolute references under it are
    /// rewritten); `reference_year`: the year of the export's transaction time (ages).
    pub fn new(policy: Policy, key: &[u8], salt: &[u8], base: &str, reference_year: i32) -> Deidentifier {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        if !policy.stable_across_exports {
            mac.update(&(salt.len() as u64).to_be_bytes());
            mac.update(salt);
        }
        Deidentifier { policy, mac, base: base.trim_end_matches('/').to_string(), reference_year }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn digest(&self, domain: &str, value: &str) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(value.as_bytes());
        m.finalize().into_bytes().into()
    }

    fn hex(&self, domain: &str, value: &str) -> String {
        self.digest(domain, value)[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The pseudonymous id of `ty/id` in this export.
    pub fn pseudonym_id(&self, ty: &str, id: &str) -> String {
        self.hex("id", &format!("{ty}/{id}"))
    }

    /// The pseudonymous value of an identifier.
    pub fn pseudonym_identifier(&self, system: Option<&str>, value: &str) -> String {
        self.hex("identifier", &format!("{}|{value}", system.unwrap_or("")))
    }

    /// The date offset in days of a patient (or of a resource without one).
    pub fn shift_days(&self, key: &str) -> i64 {
        let DateRule::Shift { max_days } = self.policy.dates else { return 0 };
        if max_days <= 0 {
            return 0;
        }
        let d = self.digest("shift", key);
        let n = u64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]));
        (n % (2 * max_days as u64 + 1)) as i64 - max_days
    }

    /// A reference rewritten to the export's ids; `None`: it cannot resolve inside the
    /// export and is dropped.
    pub fn rewrite_reference(&self, r: &str) -> Option<String> {
        if r.starts_with('#') {
            return Some(r.to_string());
        }
        if let Some(u) = r.strip_prefix("urn:uuid:") {
            return Some(format!("urn:uuid:{}", uuid_form(&self.digest("uuid", u))));
        }
        let rel = match r.strip_prefix(&self.base).and_then(|s| s.strip_prefix('/')) {
            Some(rel) => rel,
            None if r.contains(':') => return None,
            None => r,
        };
        let mut parts = rel.split('/');
        let (Some(ty), Some(id)) = (parts.next(), parts.next()) else { return None };
        let typed = ty.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && !ty.contains('?');
        let valid_id =
            !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        let rest: Vec<&str> = parts.collect();
        let tail_ok = rest.is_empty() || (rest.len() == 2 && rest[0] == "_history");
        (typed && valid_id && tail_ok).then(|| format!("{ty}/{}", self.pseudonym_id(ty, id)))
    }

    /// The patient whose date offset applies to `resource`: its own id for a Patient, else
    /// the first reference to a Patient found (depth first).
    pub fn patient_of(&self, resource: &Value) -> Option<String> {
        if resource["resourceType"] == "Patient" {
            return resource["id"].as_str().map(str::to_string);
        }
        for key in ["subject", "patient", "beneficiary"] {
            if let Some(p) = resource[key]["reference"].as_str().and_then(|r| self.patient_id(r)) {
                return Some(p);
            }
        }
        self.first_patient_reference(resource, 0)
    }

    fn patient_id(&self, r: &str) -> Option<String> {
        let rel = r.strip_prefix(&self.base).and_then(|s| s.strip_prefix('/')).unwrap_or(r);
        let id = rel.strip_prefix("Patient/")?;
        Some(id.split('/').next().unwrap_or(id).to_string())
    }

    fn first_patient_reference(&self, v: &Value, depth: usize) -> Option<String> {
        if depth > 64 {
            return None;
        }
        match v {
            Value::Object(m) => {
                if let Some(p) = m.get("reference").and_then(Value::as_str).and_then(|r| self.patient_id(r)) {
                    return Some(p);
                }
                m.iter()
                    .filter(|(k, _)| *k != "contained")
                    .find_map(|(_, x)| self.first_patient_reference(x, depth + 1))
            }
            Value::Array(a) => a.iter().find_map(|x| self.first_patient_reference(x, depth + 1)),
            _ => None,
        }
    }

    /// De-identifies one resource in place; answers the quasi-identifiers kept when it is
    /// a Patient.
    pub fn deidentify(&self, resource: &mut Value) -> Option<QuasiIdentifiers> {
        let ty = resource["resourceType"].as_str().unwrap_or("").to_string();
        let id = resource["id"].as_str().unwrap_or("").to_string();
        let shift_key = self.patient_of(resource).map_or_else(|| format!("{ty}/{id}"), |p| format!("Patient/{p}"));
        let shift = self.shift_days(&shift_key);
        let Value::Object(root) = resource else { return None };
        if !id.is_empty() {
            root.insert("id".into(), Value::String(self.pseudonym_id(&ty, &id)));
        }
        if let Some(Value::Object(meta)) = root.get_mut("meta") {
            meta.retain(|k, _| k == "profile");
        }
        if root.get("meta").is_some_and(|m| m.as_object().is_some_and(Map::is_empty)) {
            root.remove("meta");
        }
        if ty == "Binary" {
            root.remove("data");
        }
        self.walk_object(root, shift, 0);
        (ty == "Patient").then(|| QuasiIdentifiers {
            birth_year: root.get("birthDate").and_then(Value::as_str).map(str::to_string),
            gender: root.get("gender").and_then(Value::as_str).map(str::to_string),
            postal_prefix: root
                .get("address")
                .and_then(|a| a.get(0).or(Some(a)))
                .and_then(|a| a.get("postalCode"))
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    fn walk(&self, v: &mut Value, shift: i64, depth: usize) {
        if depth > 128 {
            return;
        }
        match v {
            Value::Object(m) => self.walk_object(m, shift, depth + 1),
            Value::Array(a) => a.iter_mut().for_each(|x| self.walk(x, shift, depth + 1)),
            _ => {}
        }
    }

    fn walk_object(&self, m: &mut Map<String, Value>, shift: i64, depth: usize) {
        m.remove("telecom");
        m.remove("photo");
        m.remove("note");
        for k in FREE_TEXT {
            if m.get(k).is_some_and(Value::is_string) {
                m.remove(k);
            }
        }
        if m.get("text").is_some_and(|t| t.get("div").is_some() || t.get("status").is_some()) {
            m.remove("text");
        }
        if m.get("name").is_some_and(|n| n.is_object() || n.is_array()) {
            m.remove("name");
        }
        if m.contains_key("contentType") || m.contains_key("data") && m.contains_key("size") {
            for k in ["data", "url", "title", "hash"] {
                m.remove(k);
            }
        }
        if m.contains_key("display") && !m.contains_key("code") && !m.contains_key("system") {
            m.remove("display");
        }
        if let Some(r) = m.get("reference").and_then(Value::as_str).map(str::to_string) {
            match self.rewrite_reference(&r) {
                Some(n) => m.insert("reference".into(), Value::String(n)),
                None => m.remove("reference"),
            };
        }
        if let Some(r) = m.get("fullUrl").and_then(Value::as_str).map(str::to_string) {
            match self.rewrite_reference(&r) {
                Some(n) if n.starts_with("urn:") => m.insert("fullUrl".into(), Value::String(n)),
                Some(n) => m.insert("fullUrl".into(), Value::String(format!("{}/{n}", self.base))),
                None => m.remove("fullUrl"),
            };
        }
        if let Some(b) = m.get("birthDate").and_then(Value::as_str) {
            let year = self.birth_year(b);
            m.insert("birthDate".into(), Value::String(year));
        }
        for key in ["address"] {
            match m.get_mut(key) {
                Some(Value::Array(a)) => a.iter_mut().for_each(|x| self.address(x)),
                Some(x @ Value::Object(_)) => self.address(x),
                _ => {}
            }
        }
        for key in ["identifier", "valueIdentifier", "masterIdentifier"] {
            match m.get_mut(key) {
                Some(Value::Array(a)) => a.iter_mut().for_each(|x| self.identifier(x)),
                Some(x @ Value::Object(_)) => self.identifier(x),
                _ => {}
            }
        }
        for (k, v) in m.iter_mut() {
            match v {
                Value::String(s) if !matches!(k.as_str(), "code" | "system" | "birthDate" | "id" | "reference") => {
                    if let Some(n) = self.date(s, shift) {
                        *s = n;
                    }
                }
                Value::Object(_) | Value::Array(_) if !matches!(k.as_str(), "address") => self.walk(v, shift, depth),
                _ => {}
            }
        }
    }

    fn address(&self, a: &mut Value) {
        let Value::Object(m) = a else { return };
        let postal = m
            .get("postalCode")
            .and_then(Value::as_str)
            .map(|p| p.chars().filter(char::is_ascii_digit).take(self.policy.postal_prefix_digits).collect::<String>());
        m.retain(|k, _| k == "country" || k == "use" || k == "type");
        if let Some(p) = postal.filter(|p| !p.is_empty()) {
            m.insert("postalCode".into(), Value::String(p));
        }
    }

    fn identifier(&self, i: &mut Value) {
        let Value::Object(m) = i else { return };
        if let Some(v) = m.get("value").and_then(Value::as_str) {
            let p = self.pseudonym_identifier(m.get("system").and_then(Value::as_str), v);
            m.insert("value".into(), Value::String(p));
        }
    }

    /// The exported birth year of a `birthDate`.
    pub fn birth_year(&self, b: &str) -> String {
        match b.get(..4).and_then(|y| y.parse::<i32>().ok()) {
            Some(y) if self.reference_year - y > self.policy.max_age_years => {
                (self.reference_year - self.policy.max_age_years - 1).to_string()
            }
            Some(y) => format!("{y:04}"),
            None => String::new(),
        }
    }

    /// A full date (`YYYY-MM-DD` with or without time) made less precise; `None`: not one.
    fn date(&self, s: &str, shift: i64) -> Option<String> {
        let b = s.as_bytes();
        let looks = b.len() >= 10
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b'-'
            && b[8..10].iter().all(u8::is_ascii_digit)
            && (b.len() == 10 || b[10] == b'T');
        if !looks {
            return None;
        }
        match self.policy.dates {
            DateRule::Year => Some(s[..4].to_string()),
            DateRule::Shift { .. } => {
                let d = chrono::NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").ok()?;
                let shifted = d.checked_add_signed(chrono::TimeDelta::days(shift))?;
                Some(format!("{}{}", shifted.format("%Y-%m-%d"), &s[10..]))
            }
        }
    }
}

fn uuid_form(d: &[u8; 32]) -> String {
    let h: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The smallest group of exported Patients sharing the same quasi-identifiers (k of
/// k-anonymity). Memory grows with the number of distinct groups, not of patients.
#[derive(Debug, Default)]
pub struct KAnonymity {
    groups: HashMap<QuasiIdentifiers, u64>,
}

impl KAnonymity {
    pub fn add(&mut self, q: QuasiIdentifiers) {
        *self.groups.entry(q).or_default() += 1;
    }

    /// `None` when no Patient was exported.
    pub fn k(&self) -> Option<u64> {
        self.groups.values().copied().min()
    }

    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deid() -> Deidentifier {
        Deidentifier::new(Policy::default(), b"secret", b"salt", "http://fhir.example/r4", 2025)
    }

    #[test]
    fn patient_loses_direct_identifiers() {
        let d = deid();
        let mut p = json!({
            "resourceType": "Patient", "id": "p1",
            "meta": {"versionId": "3", "lastUpdated": "2024-01-01T00:00:00Z", "tag": [{"code": "x"}], "profile": ["http://p"]},
            "text": {"status": "generated", "div": "<div>山田 太郎</div>"},
            "identifier": [{"system": "urn:oid:1.2", "value": "12345"}],
            "name": [{"family": "山田", "given": ["太郎"]}],
            "telecom": [{"system": "phone", "value": "03-1234-5678"}],
            "gender": "male", "birthDate": "1970-05-06",
            "address": [{"line": ["1-2-3 Chiyoda"], "city": "Tokyo", "postalCode": "100-0001", "country": "JP"}],
            "photo": [{"data": "AAAA"}],
            "contact": [{"name": {"family": "Contact"}, "telecom": [{"value": "090"}]}]
        });
        let q = d.deidentify(&mut p).unwrap();
        let text = p.to_string();
        for gone in [
            "山田",
            "太郎",
            "12345",
            "03-1234-5678",
            "Chiyoda",
            "Tokyo",
            "0001",
            "AAAA",
            "Contact",
            "lastUpdated",
            "\"x\"",
        ] {
            assert!(!text.contains(gone), "{gone} left in {text}");
        }
        assert_eq!(p["id"], d.pseudonym_id("Patient", "p1"));
        assert_eq!(p["birthDate"], "1970");
        assert_eq!(p["address"][0]["postalCode"], "100");
        assert_eq!(p["meta"], json!({"profile": ["http://p"]}));
        assert_eq!(
            q,
            QuasiIdentifiers {
                birth_year: Some("1970".into()),
                gender: Some("male".into()),
                postal_prefix: Some("100".into())
            }
        );
    }

    #[test]
    fn references_follow_the_ids() {
        let d = deid();
        let mut o = json!({"resourceType": "Observation", "id": "o1",
            "subject": {"reference": "Patient/p1", "display": "山田 太郎"},
            "performer": [{"reference": "http://fhir.example/r4/Practitioner/d1/_history/2"}, {"reference": "http://other/Practitioner/x"}],
            "hasMember": [{"reference": "#c1"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "1", "display": "Glucose"}], "text": "Glucose"},
            "note": [{"text": "free text"}],
            "effectiveDateTime": "2024-03-01T10:00:00+09:00"});
        d.deidentify(&mut o);
        assert_eq!(o["subject"], json!({"reference": format!("Patient/{}", d.pseudonym_id("Patient", "p1"))}));
        assert_eq!(o["performer"][0]["reference"], format!("Practitioner/{}", d.pseudonym_id("Practitioner", "d1")));
        assert_eq!(o["performer"][1], json!({}));
        assert_eq!(o["hasMember"][0]["reference"], "#c1");
        assert_eq!(o["code"]["coding"][0]["display"], "Glucose");
        assert!(o.get("note").is_none());
        let shifted = o["effectiveDateTime"].as_str().unwrap();
        assert!(shifted.ends_with("T10:00:00+09:00"));
        let days = d.shift_days("Patient/p1");
        let expect = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap() + chrono::TimeDelta::days(days);
        assert_eq!(&shifted[..10], expect.format("%Y-%m-%d").to_string());
    }

    #[test]
    fn one_patient_one_offset_within_bounds() {
        let d = deid();
        for i in 0..200 {
            assert!(d.shift_days(&format!("Patient/{i}")).abs() <= 180);
        }
        let mut p = json!({"resourceType": "Patient", "id": "p1", "deceasedDateTime": "2020-01-01"});
        let mut e = json!({"resourceType": "Encounter", "id": "e", "subject": {"reference": "Patient/p1"}, "period": {"start": "2020-01-01"}});
        d.deidentify(&mut p);
        d.deidentify(&mut e);
        assert_eq!(p["deceasedDateTime"], e["period"]["start"]);
    }

    #[test]
    fn salts_separate_exports_unless_stable() {
        let a = Deidentifier::new(Policy::default(), b"k", b"s1", "http://x", 2025);
        let b = Deidentifier::new(Policy::default(), b"k", b"s2", "http://x", 2025);
        assert_ne!(a.pseudonym_id("Patient", "1"), b.pseudonym_id("Patient", "1"));
        let stable = Policy { stable_across_exports: true, ..Policy::default() };
        let a = Deidentifier::new(stable.clone(), b"k", b"s1", "http://x", 2025);
        let b = Deidentifier::new(stable, b"k", b"s2", "http://x", 2025);
        assert_eq!(a.pseudonym_id("Patient", "1"), b.pseudonym_id("Patient", "1"));
        let other_key = Deidentifier::new(Policy::default(), b"k2", b"s1", "http://x", 2025);
        assert_ne!(
            other_key.pseudonym_id("Patient", "1"),
            Deidentifier::new(Policy::default(), b"k", b"s1", "http://x", 2025).pseudonym_id("Patient", "1")
        );
    }

    #[test]
    fn the_very_old_share_one_birth_year() {
        let d = deid();
        assert_eq!(d.birth_year("1920-02-03"), "1935");
        assert_eq!(d.birth_year("1930"), "1935");
        assert_eq!(d.birth_year("1936-01-01"), "1936");
    }

    #[test]
    fn year_rule_truncates_and_attachments_lose_content() {
        let d = Deidentifier::new(Policy { dates: DateRule::Year, ..Policy::default() }, b"k", b"s", "http://x", 2025);
        let mut r = json!({"resourceType": "DocumentReference", "id": "d", "date": "2024-05-06T00:00:00Z",
            "description": "letter about 山田", "content": [{"attachment": {"contentType": "text/plain", "data": "QUJD", "title": "t", "url": "http://x/b"}}],
            "masterIdentifier": {"system": "s", "value": "v1"}});
        d.deidentify(&mut r);
        assert_eq!(r["date"], "2024");
        assert!(r.get("description").is_none());
        assert_eq!(r["content"][0]["attachment"], json!({"contentType": "text/plain"}));
        assert_ne!(r["masterIdentifier"]["value"], "v1");
    }

    #[test]
    fn bundle_entries_keep_their_links() {
        let d = deid();
        let mut b = json!({"resourceType": "Bundle", "id": "b", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111", "resource": {"resourceType": "Patient", "id": "x"}},
            {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": {"resourceType": "Condition",
             "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}}}]});
        d.deidentify(&mut b);
        assert_eq!(b["entry"][0]["fullUrl"], b["entry"][1]["resource"]["subject"]["reference"]);
        assert_ne!(b["entry"][0]["fullUrl"], "urn:uuid:11111111-1111-1111-1111-111111111111");
    }

    #[test]
    fn k_is_the_smallest_group() {
        let mut k = KAnonymity::default();
        assert_eq!(k.k(), None);
        let q =
            |y: &str| QuasiIdentifiers { birth_year: Some(y.into()), gender: Some("f".into()), postal_prefix: None };
        k.add(q("1970"));
        k.add(q("1970"));
        k.add(q("1980"));
        assert_eq!(k.k(), Some(1));
        assert_eq!(k.groups(), 2);
    }
}
