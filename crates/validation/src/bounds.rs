//! `minValue[x]`, `maxValue[x]` and `maxLength` of an element.

use std::cmp::Ordering;

use serde_json::Value;
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};

use crate::profile::ElementRule;
use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_bounds(&mut self, rule: &ElementRule, node: &Node<'a>) {
        let Some(actual) = node.value else { return };
        if let Some(max) = rule.max_length {
            if let Some(s) = actual.as_str() {
                let len = s.chars().count();
                if len > max {
                    let loc = self.location(node);
                    self.push(
                        Severity::Error,
                        IssueType::Value,
                        loc,
                        format!("The value has {len} characters; at most {max} are allowed ({})", rule.id),
                        format!("値が {len} 文字あります。{max} 文字までです（{}）", rule.id),
                    );
                }
            }
        }
        for (bound, below) in [(&rule.min_value, true), (&rule.max_value, false)] {
            let Some(bound) = bound else { continue };
            let Some(order) = compare(actual, bound) else { continue };
            let broken = if below { order == Ordering::Less } else { order == Ordering::Greater };
            if broken {
                let (en, ja) = if below { ("at least", "以上") } else { ("at most", "以下") };
                let shown = shown(bound);
                let loc = self.location(node);
                self.push(
                    Severity::Error,
                    IssueType::Value,
                    loc,
                    format!("The value must be {en} {shown} ({})", rule.id),
                    format!("値は {shown} {ja}でなければなりません（{}）", rule.id),
                );
            }
        }
    }
}

fn shown(bound: &Value) -> String {
    match bound {
        Value::Object(q) => format!(
            "{} {}",
            q.get("value").map(Value::to_string).unwrap_or_default(),
            q.get("code").or_else(|| q.get("unit")).and_then(Value::as_str).unwrap_or("")
        ),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How `actual` compares with `bound`; `None` when they cannot be compared (different
/// units, different kinds of value).
fn compare(actual: &Value, bound: &Value) -> Option<Ordering> {
    match (actual, bound) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        // Dates, dateTimes, instants and times: ISO 8601 text orders as time does at equal
        // precision; compare at the precision both have.
        (Value::String(a), Value::String(b)) => {
            let n = a.len().min(b.len());
            let (a, b) = (a.get(..n)?, b.get(..n)?);
            Some(a.cmp(b))
        }
        (Value::Object(a), Value::Object(b)) => {
            let unit = |q: &serde_json::Map<String, Value>| q.get("code").or_else(|| q.get("unit")).cloned();
            if unit(a) != unit(b) {
                // Different UCUM units of one dimension compare after conversion.
                let a = crate::units::converted(a, b)?;
                return a.partial_cmp(&b.get("value")?.as_f64()?);
            }
            compare(a.get("value")?, b.get("value")?)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compares_numbers_dates_and_quantities() {
        assert_eq!(compare(&json!(3), &json!(5)), Some(Ordering::Less));
        assert_eq!(compare(&json!("2020-01-02"), &json!("2020-01-01")), Some(Ordering::Greater));
        let q = |v: f64, code: &str| json!({"value": v, "code": code});
        assert_eq!(compare(&q(1.0, "mg"), &q(2.0, "mg")), Some(Ordering::Less));
        assert_eq!(compare(&q(1.0, "mg"), &q(2.0, "kg")), Some(Ordering::Less), "after conversion");
        assert_eq!(compare(&q(3000.0, "g"), &q(2.0, "kg")), Some(Ordering::Greater));
        assert_eq!(compare(&q(1.0, "mg"), &q(2.0, "m")), None, "different dimensions");
    }
}
