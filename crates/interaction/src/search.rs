//! Search: parsing the parameters, running the query, and shaping the `searchset` Bundle.
//!
//! Until the search engine lands, the indexed parameters are `_id` and `_lastUpdated`
//! (with every date prefix); the CapabilityStatement says exactly that.

use crate::error::InteractionError;
use crate::instant::{format_instant, parse_range};
use crate::{Interactions, RequestContext};
use serde_json::{json, Map, Value};
use tsunagu_store::{ResourceVersion, SearchQuery};

/// Parameters that shape results rather than select them; never "unknown".
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_total",
    "_cursor",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
    "_sort",
    "_include",
    "_revinclude",
];

/// Search parameters as given, in order (a parameter may repeat: AND).
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub pairs: Vec<(String, String)>,
}

impl SearchParams {
    pub fn parse(query: &str) -> SearchParams {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        SearchParams { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query string again, without the paging cursor.
    fn without_cursor(&self) -> String {
        self.pairs
            .iter()
            .filter(|(k, _)| k != "_cursor")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-decoding of a query component (`+` is a space).
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:|,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How a date prefix turns a value range `[lo, hi)` into ranges of matching instants.
fn date_ranges(prefix: &str, lo: i64, hi: i64) -> Option<Vec<(i64, i64)>> {
    const MIN: i64 = i64::MIN / 2;
    const MAX: i64 = i64::MAX / 2;
    Some(match prefix {
        "eq" => vec![(lo, hi)],
        "ne" => vec![(MIN, lo), (hi, MAX)],
        "gt" | "sa" => vec![(hi, MAX)],
        "lt" | "eb" => vec![(MIN, lo)],
        "ge" => vec![(lo, MAX)],
        "le" => vec![(MIN, hi)],
        "ap" => {
            // Approximately: within 10% of the distance to now, at least the value's own span.
            let now = chrono::Utc::now().timestamp_millis();
            let gap = ((now - lo).abs() / 10).max(hi - lo);
            vec![(lo - gap, hi + gap)]
        }
        _ => return None,
    })
}

/// `code`, `system|code`, `|code`, `system|`.
fn parse_token(v: &str) -> tsunagu_store::TokenMatch {
    use tsunagu_store::{SystemMatch, TokenMatch};
    match v.split_once('|') {
        None => TokenMatch {
            system: SystemMatch::Any,
            code: Some(v.to_string()),
        },
        Some(("", code)) => TokenMatch {
            system: SystemMatch::Absent,
            code: Some(code.to_string()),
        },
        Some((sys, "")) => TokenMatch {
            system: SystemMatch::Is(sys.to_string()),
            code: None,
        },
        Some((sys, code)) => TokenMatch {
            system: SystemMatch::Is(sys.to_string()),
            code: Some(code.to_string()),
        },
    }
}

fn split_prefix(v: &str) -> (&str, &str) {
    if v.len() > 2 && v.as_bytes()[..2].iter().all(u8::is_ascii_lowercase) {
        let p = &v[..2];
        if matches!(
            p,
            "eq" | "ne" | "gt" | "lt" | "ge" | "le" | "sa" | "eb" | "ap"
        ) {
            return (p, &v[2..]);
        }
    }
    ("eq", v)
}

impl Interactions {
    /// Turns search parameters into a store query. Unknown parameters are an error under
    /// `strict`, ignored (and reported back through `ignored`) otherwise.
    pub(crate) fn build_query(
        &self,
        ty: Option<&str>,
        params: &SearchParams,
        strict: bool,
        ignored: &mut Vec<String>,
    ) -> Result<SearchQuery, InteractionError> {
        let mut q = SearchQuery {
            resource_type: ty.map(str::to_string),
            ..SearchQuery::default()
        };
        for (name, value) in &params.pairs {
            let (base, modifier) = match name.split_once(':') {
                Some((b, m)) => (b, Some(m)),
                None => (name.as_str(), None),
            };
            match (base, modifier) {
                ("_id", None) => {
                    let ids: Vec<String> = value.split(',').map(str::to_string).collect();
                    if q.ids.is_empty() {
                        q.ids = ids;
                    } else {
                        // AND of two id lists: their intersection.
                        q.ids.retain(|i| ids.contains(i));
                        if q.ids.is_empty() {
                            q.ids.push(String::new());
                        }
                    }
                }
                ("_lastUpdated", None) => {
                    let mut any = Vec::new();
                    for v in value.split(',') {
                        let (prefix, date) = split_prefix(v);
                        let ranges = parse_range(date)
                            .and_then(|(lo, hi)| date_ranges(prefix, lo, hi))
                            .ok_or_else(|| {
                                InteractionError::bad_request(
                                    format!("'{v}' is not a valid date for _lastUpdated"),
                                    format!("_lastUpdated の値 '{v}' は日付として不正です"),
                                )
                            })?;
                        any.extend(ranges);
                    }
                    q.last_updated_any.push(any);
                }
                _ if RESULT_PARAMS.contains(&base) => {}
                (code, None) if ty.is_some_and(|t| crate::index::is_indexed_token(t, code)) => {
                    let any = value.split(',').map(parse_token).collect();
                    q.tokens.push(tsunagu_store::TokenClause {
                        param: code.to_string(),
                        any,
                    });
                }
                _ => {
                    let known = ty.and_then(|t| self.model.search_param(t, base)).is_some();
                    let (en, ja) = if known {
                        (
                            format!("the search parameter '{name}' is defined but not indexed yet"),
                            format!("検索パラメータ '{name}' は定義されていますが、まだ索引化されていません"),
                        )
                    } else {
                        (
                            format!("unknown search parameter '{name}'"),
                            format!("検索パラメータ '{name}' は不明です"),
                        )
                    };
                    if strict || known {
                        // A known but unindexed parameter must not be silently ignored:
                        // the client would get more than it asked for.
                        return Err(if known {
                            InteractionError::not_supported(en, ja)
                        } else {
                            InteractionError::bad_request(en, ja)
                        });
                    }
                    ignored.push(name.clone());
                }
            }
        }
        Ok(q)
    }

    fn page_size(&self, params: &SearchParams) -> Result<usize, InteractionError> {
        match params.get("_count") {
            None => Ok(self.config.default_count),
            Some(c) => c
                .parse::<usize>()
                .map(|n| n.min(self.config.max_count))
                .map_err(|_| {
                    InteractionError::bad_request(
                        format!("_count must be a non-negative integer, not '{c}'"),
                        format!("_count は 0 以上の整数でなければなりません（'{c}'）"),
                    )
                }),
        }
    }

    /// Type-level (`ty` given) or system-level search, one page as a `searchset` Bundle.
    pub fn search(
        &self,
        ty: Option<&str>,
        params: &SearchParams,
        ctx: &RequestContext,
    ) -> Result<Value, InteractionError> {
        if let Some(t) = ty {
            self.known_type(t)?;
        }
        let mut ignored = Vec::new();
        let mut q = self.build_query(ty, params, ctx.strict, &mut ignored)?;
        q.count = self.page_size(params)?;
        let summary_count = params.get("_summary") == Some("count");
        if summary_count {
            q.count = 0;
        }
        q.total =
            summary_count || matches!(params.get("_total"), Some("accurate") | Some("estimate"));
        if let Some(c) = params.get("_cursor") {
            q.after_seq = Some(c.parse().map_err(|_| {
                InteractionError::bad_request(
                    "the paging cursor is invalid",
                    "ページングのカーソルが不正です",
                )
            })?);
        }
        let page = self.store.search(&q)?;
        let path = match ty {
            Some(t) => format!("{}/{t}", ctx.base),
            None => ctx.base.clone(),
        };
        let query = params.without_cursor();
        let mut links =
            vec![json!({ "relation": "self", "url": format!("{path}?{}", params_string(params)) })];
        if page.more {
            if let Some(last) = page.resources.last() {
                let sep = if query.is_empty() { "" } else { "&" };
                links.push(json!({ "relation": "next", "url": format!("{path}?{query}{sep}_cursor={}", last.seq) }));
            }
        }
        let mut bundle = Map::new();
        bundle.insert("resourceType".into(), "Bundle".into());
        bundle.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
        bundle.insert(
            "meta".into(),
            json!({ "lastUpdated": format_instant(chrono::Utc::now().timestamp_millis()) }),
        );
        bundle.insert("type".into(), "searchset".into());
        if let Some(t) = page.total {
            bundle.insert("total".into(), t.into());
        }
        bundle.insert("link".into(), Value::Array(links));
        let entries: Vec<Value> = page
            .resources
            .iter()
            .map(|v| search_entry(v, ctx))
            .collect::<Result<_, _>>()?;
        if !entries.is_empty() {
            bundle.insert("entry".into(), Value::Array(entries));
        }
        if !ignored.is_empty() {
            let oo = crate::outcome::information(
                &format!("Ignored unknown search parameters: {}", ignored.join(", ")),
                &format!("不明な検索パラメータを無視しました: {}", ignored.join(", ")),
                ctx.lang,
            );
            let entries = bundle
                .entry("entry")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entries {
                a.push(json!({ "resource": oo, "search": { "mode": "outcome" } }));
            }
        }
        Ok(Value::Object(bundle))
    }
}

fn params_string(params: &SearchParams) -> String {
    params
        .pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn full_url(ctx: &RequestContext, ty: &str, id: &str) -> String {
    format!("{}/{ty}/{id}", ctx.base)
}

fn search_entry(v: &ResourceVersion, ctx: &RequestContext) -> Result<Value, InteractionError> {
    let resource: Value = serde_json::from_slice(&v.body).map_err(|e| {
        tsunagu_store::StoreError::Corrupt(format!("{}/{}: {e}", v.resource_type, v.id))
    })?;
    Ok(json!({
        "fullUrl": full_url(ctx, &v.resource_type, &v.id),
        "resource": resource,
        "search": { "mode": "match" }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let p = SearchParams::parse("name=Yamada%20Taro&_id=a,b&x=%E5%B1%B1&bad=%zz&plus=a+b");
        assert_eq!(p.get("name"), Some("Yamada Taro"));
        assert_eq!(p.get("_id"), Some("a,b"));
        assert_eq!(p.get("x"), Some("山"));
        assert_eq!(p.get("bad"), Some("%zz"));
        assert_eq!(p.get("plus"), Some("a b"));
    }

    #[test]
    fn prefixes_split() {
        assert_eq!(split_prefix("ge2020"), ("ge", "2020"));
        assert_eq!(split_prefix("2020"), ("eq", "2020"));
    }
}
