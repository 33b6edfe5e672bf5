//! FHIR data types as one line of readable text: CodeableConcept, Quantity, Period, dates,
//! names, `value[x]` choices. Everything returned here is still raw document text; the caller
//! escapes it when writing (see [`crate::escape`]).

use std::borrow::Cow;

use serde_json::Value;

use crate::codes::{self, Table};
use crate::cx::Cx;
use crate::labels::Lang;
use crate::resolve::{str_at, Res};

/// A CodeableConcept as a person would say it: its `text`, else the first coding's display,
/// else the first code.
pub(crate) fn concept(v: &Value) -> Option<Cow<'_, str>> {
    if let Some(text) = str_at(v, "text") {
        return Some(Cow::Borrowed(text));
    }
    let codings = v.get("coding")?.as_array()?;
    codings
        .iter()
        .find_map(|c| str_at(c, "display"))
        .or_else(|| codings.iter().find_map(|c| str_at(c, "code")))
        .map(Cow::Borrowed)
}

/// A Coding: display, else code.
pub(crate) fn coding(v: &Value) -> Option<Cow<'_, str>> {
    str_at(v, "display").or_else(|| str_at(v, "code")).map(Cow::Borrowed)
}

/// The first code of a CodeableConcept translated through `table`, else the concept's text.
pub(crate) fn coded_concept<'a>(v: &'a Value, table: Table, lang: Lang) -> Option<Cow<'a, str>> {
    let known = v
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|c| str_at(c, "code").and_then(|code| codes::word(table, code, lang)));
    match known {
        Some(word) => Some(Cow::Borrowed(word)),
        None => concept(v),
    }
}

/// A `code` primitive translated through `table`, else as written.
pub(crate) fn code<'a>(v: Option<&'a Value>, table: Table, lang: Lang) -> Option<Cow<'a, str>> {
    let code = v?.as_str().filter(|s| !s.is_empty())?;
    Some(Cow::Borrowed(codes::word(table, code, lang).unwrap_or(code)))
}

/// Each concept of an array, joined with `、`.
pub(crate) fn concepts(v: Option<&Value>) -> Option<String> {
    join(v?.as_array()?.iter().filter_map(concept))
}

/// Each concept of an array, joined (as a `Cow` for callers that mix borrowed text).
pub(crate) fn concepts_of(v: &Value) -> Option<Cow<'_, str>> {
    concepts(Some(v)).map(Cow::Owned)
}

pub(crate) fn join<'s>(parts: impl Iterator<Item = Cow<'s, str>>) -> Option<String> {
    let mut out = String::new();
    for p in parts {
        if !out.is_empty() {
            out.push('、');
        }
        out.push_str(&p);
    }
    (!out.is_empty()).then_some(out)
}

/// A JSON number or string as written (arbitrary precision keeps `70.0` as `70.0`).
pub(crate) fn number(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A Quantity (or Age, Duration, …): comparator, value and unit. Units written in Japanese
/// (`錠`, `日`) follow the number directly; Latin ones (`mmHg`) after a space.
pub(crate) fn quantity(v: &Value) -> Option<String> {
    let value = v.get("value").and_then(number);
    let unit = str_at(v, "unit").or_else(|| str_at(v, "code"));
    let mut out = String::new();
    if let Some(c) = str_at(v, "comparator") {
        out.push_str(c);
    }
    match (value, unit) {
        (Some(n), Some(u)) => {
            out.push_str(&n);
            if u.starts_with(|c: char| c.is_ascii()) && u != "%" {
                out.push(' ');
            }
            out.push_str(u);
        }
        (Some(n), None) => out.push_str(&n),
        (None, Some(u)) => out.push_str(u),
        (None, None) => return None,
    }
    Some(out)
}

/// A Range: `low〜high` (the unit once when both sides share it), or `≥ low` / `≤ high`
/// when open.
pub(crate) fn range(v: &Value) -> Option<String> {
    let (low_q, high_q) = (v.get("low"), v.get("high"));
    if unit_of(low_q).is_some() && unit_of(low_q) == unit_of(high_q) {
        if let (Some(l), Some(h)) = (low_q.and_then(|q| q.get("value")).and_then(number), high_q.and_then(quantity)) {
            return Some(format!("{l}〜{h}"));
        }
    }
    let low = low_q.and_then(quantity);
    let high = high_q.and_then(quantity);
    match (low, high) {
        (Some(l), Some(h)) => Some(format!("{l}〜{h}")),
        (Some(l), None) => Some(format!("≥ {l}")),
        (None, Some(h)) => Some(format!("≤ {h}")),
        (None, None) => None,
    }
}

fn unit_of(q: Option<&Value>) -> Option<&str> {
    q.and_then(|q| str_at(q, "unit").or_else(|| str_at(q, "code")))
}

/// A Ratio: `numerator / denominator`.
pub(crate) fn ratio(v: &Value) -> Option<String> {
    let n = v.get("numerator").and_then(quantity)?;
    match v.get("denominator").and_then(quantity) {
        Some(d) => Some(format!("{n} / {d}")),
        None => Some(n),
    }
}

/// A Period: `start〜end` with either side open.
pub(crate) fn period(v: &Value, lang: Lang) -> Option<String> {
    let start = str_at(v, "start").map(|s| date(s, lang));
    let end = str_at(v, "end").map(|s| date(s, lang));
    match (start, end) {
        (Some(s), Some(e)) if s == e => Some(s.into_owned()),
        (Some(s), Some(e)) => Some(format!("{s}〜{e}")),
        (Some(s), None) => Some(format!("{s}〜")),
        (None, Some(e)) => Some(format!("〜{e}")),
        (None, None) => None,
    }
}

/// A FHIR date, dateTime or instant for reading: `2020年8月21日 12:12` (Japanese) or
/// `2020-08-21 12:12` (English). The zone is left out when it is Japan's (+09:00). Anything
/// that is not a FHIR date is returned as written.
pub(crate) fn date(s: &str, lang: Lang) -> Cow<'_, str> {
    fn digits(s: &str, n: usize) -> Option<&str> {
        (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
    }
    let (day, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = day.split('-');
    let Some(year) = parts.next().and_then(|y| digits(y, 4)) else { return Cow::Borrowed(s) };
    let month = parts.next();
    let dom = parts.next();
    if parts.next().is_some()
        || month.is_some_and(|m| digits(m, 2).is_none())
        || dom.is_some_and(|d| digits(d, 2).is_none())
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(24);
    match lang {
        Lang::Ja => {
            out.push_str(year);
            out.push('年');
            if let Some(m) = month {
                out.push_str(m.trim_start_matches('0'));
                out.push('月');
            }
            if let Some(d) = dom {
                out.push_str(d.trim_start_matches('0'));
                out.push('日');
            }
        }
        Lang::En => out.push_str(day),
    }
    if let Some(t) = time {
        // hh:mm[:ss[.fff]][Z|±hh:mm]: show hh:mm and a zone other than Japan's.
        let zone_at = t.find(['Z', '+', '-']).unwrap_or(t.len());
        let (clock, zone) = t.split_at(zone_at);
        let hh_mm = clock
            .as_bytes()
            .get(..5)
            .filter(|b| b[2] == b':' && [b[0], b[1], b[3], b[4]].iter().all(u8::is_ascii_digit));
        if hh_mm.is_some() {
            out.push(' ');
            out.push_str(&clock[..5]);
            match zone {
                "" | "+09:00" => {}
                "Z" => out.push_str(" UTC"),
                z => {
                    out.push_str(" UTC");
                    out.push_str(z);
                }
            }
        } else {
            return Cow::Borrowed(s);
        }
    }
    Cow::Owned(out)
}

/// A HumanName: its `text`, else family then given names (the Japanese order).
pub(crate) fn human_name(v: &Value) -> Option<Cow<'_, str>> {
    if let Some(text) = str_at(v, "text") {
        return Some(Cow::Borrowed(text));
    }
    let mut parts: Vec<&str> = Vec::new();
    parts.extend(str_at(v, "family"));
    parts.extend(v.get("given").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str));
    (!parts.is_empty()).then(|| Cow::Owned(parts.join(" ")))
}

/// Annotation texts (`note`), joined.
pub(crate) fn notes(v: Option<&Value>) -> Option<String> {
    let list = v?.as_array()?;
    let mut out = String::new();
    for text in list.iter().filter_map(|n| str_at(n, "text")) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(text);
    }
    (!out.is_empty()).then_some(out)
}

/// The element `prefix[x]` of `res` (e.g. `value`, `onset`, `effective`) as text, whichever
/// type it is.
pub(crate) fn choice<'a>(cx: &Cx<'a>, res: Res<'a>, prefix: &str) -> Option<Cow<'a, str>> {
    let map = res.value.as_object()?;
    let (key, v) = map
        .iter()
        .find(|(k, _)| k.strip_prefix(prefix).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase())))?;
    typed(cx, res, &key[prefix.len()..], v)
}

/// A value of FHIR type `kind` as text.
pub(crate) fn typed<'a>(cx: &Cx<'a>, res: Res<'a>, kind: &str, v: &'a Value) -> Option<Cow<'a, str>> {
    let lang = cx.lang;
    match kind {
        "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" | "Money" => {
            quantity(v).map(Cow::Owned)
        }
        "CodeableConcept" => concept(v),
        "Coding" => coding(v),
        "Boolean" => v.as_bool().map(|b| Cow::Borrowed(if b { cx.t.yes } else { cx.t.no })),
        "Integer" | "Decimal" | "UnsignedInt" | "PositiveInt" | "Integer64" => number(v).map(Cow::Owned),
        "DateTime" | "Date" | "Instant" => v.as_str().map(|s| date(s, lang)),
        "Period" => period(v, lang).map(Cow::Owned),
        "Range" => range(v).map(Cow::Owned),
        "Ratio" => ratio(v).map(Cow::Owned),
        "Reference" => Some(cx.reference_text(res, v)),
        "Attachment" => str_at(v, "title").map(Cow::Borrowed),
        "Annotation" => str_at(v, "text").map(Cow::Borrowed),
        "HumanName" => human_name(v),
        // string, code, markdown, time, uri, id and the rest of the primitives.
        _ => v.as_str().filter(|s| !s.is_empty()).map(Cow::Borrowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_read_in_japanese_and_english() {
        assert_eq!(date("2020-08-21T12:12:20+09:00", Lang::Ja), "2020年8月21日 12:12");
        assert_eq!(date("2022-05", Lang::Ja), "2022年5月");
        assert_eq!(date("2018", Lang::Ja), "2018年");
        assert_eq!(date("2020-08-21T03:12:20Z", Lang::En), "2020-08-21 03:12 UTC");
        assert_eq!(date("not a date", Lang::Ja), "not a date");
        assert_eq!(date("2020-01-01T12:3é", Lang::Ja), "2020-01-01T12:3é");
        assert_eq!(date("2020-01-01T1", Lang::Ja), "2020-01-01T1");
    }

    #[test]
    fn quantities_place_units_like_people_do() {
        assert_eq!(quantity(&json!({"value": 28, "unit": "錠"})).unwrap(), "28錠");
        assert_eq!(quantity(&json!({"value": 149, "unit": "mmHg"})).unwrap(), "149 mmHg");
        assert_eq!(quantity(&json!({"value": 5, "comparator": "<", "code": "mg"})).unwrap(), "<5 mg");
        assert_eq!(
            range(&json!({"low": {"value": 80}, "high": {"value": 130, "unit": "mmHg"}})).unwrap(),
            "80〜130 mmHg"
        );
        assert_eq!(
            range(&json!({"low": {"value": 80, "unit": "mmHg"}, "high": {"value": 130, "unit": "mmHg"}})).unwrap(),
            "80〜130 mmHg"
        );
        assert_eq!(
            range(&json!({"low": {"value": 1, "unit": "g"}, "high": {"value": 2, "unit": "kg"}})).unwrap(),
            "1 g〜2 kg"
        );
    }
}
