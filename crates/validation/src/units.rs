//! Units of measure (datatypes.html §Quantity): a Quantity whose `system` is UCUM
//! (`http://unitsofmeasure.org`) carries a `code` that is a valid UCUM expression made of
//! known atoms; and bounds given in one UCUM unit compare with values in another after
//! conversion. UCUM itself comes from the `ucum-units` crate (the official essence table).

use serde_json::{Map, Value};
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};

use crate::walk::Walk;

pub(crate) const UCUM: &str = "http://unitsofmeasure.org";

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_ucum(&mut self, node: &Node<'a>) {
        let Some(q) = node.value.and_then(Value::as_object) else { return };
        if q.get("system").and_then(Value::as_str) != Some(UCUM) {
            return;
        }
        let Some(code) = q.get("code").and_then(Value::as_str) else { return };
        if let Err(e) = ucum::validate(code) {
            // The code is echoed back: never more than a line of it.
            let code: String = match code.char_indices().nth(64) {
                Some((i, _)) => format!("{}…", &code[..i]),
                None => code.to_string(),
            };
            let loc = format!("{}.code", self.location(node));
            self.push(
                Severity::Error,
                IssueType::CodeInvalid,
                loc,
                format!("'{code}' is not a valid UCUM unit: {e}"),
                format!("'{code}' は正しい UCUM の単位ではありません: {e}"),
            );
        }
    }
}

/// `value` of `q` expressed in the UCUM unit of `target`, when both are UCUM units of the
/// same dimension (a Quantity without a system but with a UCUM-valid code counts as UCUM
/// only when the other names UCUM: profiles fix bounds with the system).
fn ucum_code(m: &Map<String, Value>) -> Option<&str> {
    let system = m.get("system").and_then(Value::as_str);
    if system.is_some_and(|s| s != UCUM) {
        return None;
    }
    m.get("code").and_then(Value::as_str)
}

pub(crate) fn converted(q: &Map<String, Value>, target: &Map<String, Value>) -> Option<f64> {
    let (from, to) = (ucum_code(q)?, ucum_code(target)?);
    let value = q.get("value")?.as_f64()?;
    ucum::Ucum::case_sensitive().convert(value, from, to).ok()
}
