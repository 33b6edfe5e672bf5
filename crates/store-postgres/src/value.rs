//! Bound values of generated SQL. Query builders write `?` where a value goes (as the
//! SQLite builders do) and push the value; [`number`] then turns each `?` into `$n` with
//! an explicit cast, so the server never has to guess a parameter's type.

use postgres::types::ToSql;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    Text(String),
    Int(i64),
    Real(f64),
    TextArray(Vec<String>),
    IntArray(Vec<i64>),
}

impl V {
    fn cast(&self) -> &'static str {
        match self {
            V::Text(_) => "text",
            V::Int(_) => "int8",
            V::Real(_) => "float8",
            V::TextArray(_) => "text[]",
            V::IntArray(_) => "int8[]",
        }
    }

    pub(crate) fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            V::Text(s) => s,
            V::Int(n) => n,
            V::Real(f) => f,
            V::TextArray(a) => a,
            V::IntArray(a) => a,
        }
    }
}

/// `sql` with its `?` numbered `$1::type, $2::type …` after `values`. The generated SQL
/// never holds a `?` of its own (no string literals with one, no jsonb operators).
pub(crate) fn number(sql: &str, values: &[V]) -> String {
    let mut out = String::with_capacity(sql.len() + values.len() * 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            let cast = values.get(n).map_or("text", V::cast);
            n += 1;
            out.push_str(&format!("(${n}::{cast})"));
        } else {
            out.push(ch);
        }
    }
    debug_assert_eq!(n, values.len(), "one value per placeholder in {sql}");
    out
}

/// A value as `tsunagu explain` prints it (long text cut).
pub(crate) fn show(v: &V) -> String {
    fn text(t: &str) -> String {
        match t.char_indices().nth(200) {
            Some((at, _)) => format!("'{}…'", &t[..at]),
            None => format!("'{t}'"),
        }
    }
    match v {
        V::Text(t) => text(t),
        V::Int(n) => n.to_string(),
        V::Real(f) => f.to_string(),
        V::TextArray(a) if a.len() > 20 => {
            format!("ARRAY[{}, … {} in all]", a[..20].iter().map(|t| text(t)).collect::<Vec<_>>().join(", "), a.len())
        }
        V::TextArray(a) => format!("ARRAY[{}]", a.iter().map(|t| text(t)).collect::<Vec<_>>().join(", ")),
        V::IntArray(a) if a.len() > 20 => format!("ARRAY[{:?}, … {} in all]", &a[..20], a.len()),
        V::IntArray(a) => format!("ARRAY{a:?}"),
    }
}

pub(crate) fn refs(values: &[V]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(V::sql).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_with_casts() {
        let v = [V::Text("a".into()), V::Int(1), V::Real(0.5), V::TextArray(vec![])];
        assert_eq!(
            number("a = ? AND b > ? OR c < ? OR d = ANY(?)", &v),
            "a = ($1::text) AND b > ($2::int8) OR c < ($3::float8) OR d = ANY(($4::text[]))"
        );
    }
}
