//! The base-structure check: does a JSON resource conform to the R4 base definitions as far
//! as its shape goes (known elements, JSON types, array-ness, cardinality, primitive
//! formats, required code bindings)? Profiles, invariants and terminology beyond the core
//! package's required value sets are someone else's job.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};
use tsunagu_model::{BindingStrength, ElementDef, Model, TypeRef};

use crate::issue::{Issue, IssueType, Severity};
use crate::primitive::{json_kind, JsonKind};

/// Checks a JSON resource against the base R4 structure; an empty result means it passes.
/// Locations are FHIRPath-like, using the JSON property names (`Observation.valueQuantity`,
/// `Patient.name[0].given[1]`). Contained and Bundle entry resources are checked in place.
pub fn check_structure(resource: &Value) -> Vec<Issue> {
    check_structure_limited(resource, tsunagu_limits::Limits::default().max_issues)
}

/// [`check_structure`] reporting at most `max_issues` issues, then one that says the list
/// was cut ([`truncation_issue`]). Checking stops there, so a resource with millions of
/// wrong elements costs no more than one with `max_issues` of them.
pub fn check_structure_limited(resource: &Value, max_issues: usize) -> Vec<Issue> {
    let mut c = Checker { model: tsunagu_model::r4(), issues: Vec::new(), max_issues, truncated: false, split: true };
    let root = resource.get("resourceType").and_then(Value::as_str).unwrap_or("Resource");
    c.resource(resource, &Loc::Root(root));
    if c.truncated {
        c.issues.push(truncation_issue(max_issues));
    }
    c.issues
}

/// The last issue of a list cut at `max_issues`.
pub fn truncation_issue(max_issues: usize) -> Issue {
    Issue {
        severity: Severity::Warning,
        code: IssueType::TooCostly,
        location: String::new(),
        message_en: format!("More issues were found; only the first {max_issues} are listed (limit max_issues)"),
        message_ja: format!("問題はさらにありますが、最初の {max_issues} 件のみを示します（上限 max_issues）"),
    }
}

struct Checker {
    model: &'static Model,
    issues: Vec<Issue>,
    max_issues: usize,
    /// An issue was dropped at the limit; the walk stops as soon as it can.
    truncated: bool,
    /// Whether a long array of complex items may be checked on two threads (only the
    /// first such array met: a Bundle's entries, not every array beneath them).
    split: bool,
}

/// Arrays of complex items at least this long are checked half on another thread: a
/// transaction Bundle's check is otherwise a serial stretch of its request.
const SPLIT_ITEMS: usize = 64;

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Anchored regexes of the primitive types, compiled once.
fn regexes() -> &'static HashMap<&'static str, Regex> {
    static R: OnceLock<HashMap<&'static str, Regex>> = OnceLock::new();
    R.get_or_init(|| {
        let m = tsunagu_model::r4();
        let names = [
            "base64Binary",
            "boolean",
            "canonical",
            "code",
            "date",
            "dateTime",
            "decimal",
            "id",
            "instant",
            "integer",
            "markdown",
            "oid",
            "positiveInt",
            "string",
            "time",
            "unsignedInt",
            "uri",
            "url",
            "uuid",
        ];
        names
            .iter()
            .filter_map(|n| {
                let re = ascii_whitespace(m.type_def(n)?.regex?);
                Some((*n, Regex::new(&format!("^(?:{re})$")).expect("core primitive regexes compile")))
            })
            .collect()
    })
}

/// The specification's regexes follow XML Schema / Java, where `\s` is ASCII whitespace
/// only; Rust's Unicode `\s` would reject e.g. a no-break space inside a string.
fn ascii_whitespace(re: &str) -> String {
    // Rust regex classes nest, so the replacement works inside `[...]` as well.
    re.replace("\\s", "[\\t\\n\\x0B\\f\\r ]").replace("\\S", "[^\\t\\n\\x0B\\f\\r ]")
}

/// XML Schema whitespace as the specification's regexes mean it.
fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' ')
}

/// A string primitive's format check. The bulkiest types (free text, URIs, base64) are
/// checked by hand with the same meaning as their regexes; the rest use the regexes.
fn matches_format(code: &str, s: &str) -> bool {
    match code {
        // `[ \r\n\t\S]+`
        "string" | "markdown" => !s.is_empty() && !s.contains(['\x0B', '\x0C']),
        // `\S*`; a URI naming an OID or a UUID must be one (the oid and uuid types' rules).
        "uri" | "url" | "canonical" => {
            !s.contains(is_ws)
                && (!s.starts_with("urn:oid:") || regexes().get("oid").is_none_or(|re| re.is_match(s)))
                && (!s.starts_with("urn:uuid:") || regexes().get("uuid").is_none_or(|re| re.is_match(s)))
        }
        // The regex admits 2021-02-29; the type is a calendar date.
        "date" | "dateTime" | "instant" => regexes().get(code).is_none_or(|re| re.is_match(s)) && calendar_day(s),
        // `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`: whitespace only between groups of four.
        "base64Binary" => {
            let mut n = 0usize;
            for c in s.chars() {
                if c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=' {
                    n += 1;
                } else if !(is_ws(c) && n & 3 == 0) {
                    return false;
                }
            }
            n > 0 && n & 3 == 0
        }
        _ => match regexes().get(code) {
            Some(re) => re.is_match(s),
            None => true,
        },
    }
}

/// Why a URI naming a UUID or an OID is refused, when that is why: its text alone looks
/// like any other URI.
fn format_hint(code: &str, s: &str) -> (&'static str, &'static str) {
    if !matches!(code, "uri" | "url" | "canonical") {
        return ("", "");
    }
    if s.starts_with("urn:uuid:") {
        (
            ": after urn:uuid: comes a UUID in lowercase hexadecimal (8-4-4-4-12 digits)",
            "。urn:uuid: の後には小文字 16 進の UUID（8-4-4-4-12 桁）が必要です",
        )
    } else if s.starts_with("urn:oid:") {
        (
            ": after urn:oid: comes an OID (numbers joined by dots, such as 1.2.392.100495.20.3.51)",
            "。urn:oid: の後には OID（1.2.392.100495.20.3.51 のようにドットでつないだ数字）が必要です",
        )
    } else {
        ("", "")
    }
}

/// Whether the day of a `YYYY-MM-DD…` value exists in its month (shorter values have none).
fn calendar_day(s: &str) -> bool {
    let (Some(y), Some(m), Some(d)) = (s.get(0..4), s.get(5..7), s.get(8..10)) else { return true };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else { return true };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let last = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (1..=last).contains(&d)
}

/// Every string of `v` that starts with `#` (local references), at any depth.
fn local_references<'v>(v: &'v Value, out: &mut std::collections::HashSet<&'v str>) {
    match v {
        Value::String(s) if s.starts_with('#') => {
            out.insert(s);
        }
        Value::Object(m) => m.values().for_each(|x| local_references(x, out)),
        Value::Array(a) => a.iter().for_each(|x| local_references(x, out)),
        _ => {}
    }
}

/// Shortens a value for a message (base64 payloads can be megabytes).
fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn kind_names(k: JsonKind) -> (&'static str, &'static str) {
    match k {
        JsonKind::Bool => ("boolean", "真偽値"),
        JsonKind::Number => ("number", "数値"),
        JsonKind::String => ("string", "文字列"),
    }
}

/// Where an element is, built up while descending and written out only for an issue (most
/// elements have none, and formatting every path was a tenth of a bulk load's staging).
enum Loc<'a> {
    Root(&'a str),
    Field(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

impl std::fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loc::Root(r) => f.write_str(r),
            Loc::Field(parent, name) => write!(f, "{parent}.{name}"),
            Loc::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Checker {
    fn push(&mut self, code: IssueType, location: &Loc<'_>, en: String, ja: String) {
        if self.issues.len() >= self.max_issues {
            self.truncated = true;
            return;
        }
        self.issues.push(Issue {
            severity: Severity::Error,
            code,
            location: location.to_string(),
            message_en: en,
            message_ja: ja,
        });
    }

    fn resource(&mut self, v: &Value, loc: &Loc<'_>) {
        let Some(obj) = v.as_object() else {
            return self.push(
                IssueType::Structure,
                loc,
                "A resource must be a JSON object".into(),
                "リソースは JSON オブジェクトで指定してください".into(),
            );
        };
        let rt = match obj.get("resourceType") {
            Some(Value::String(s)) => s.as_str(),
            _ => {
                return self.push(
                    IssueType::Required,
                    loc,
                    "Missing resourceType (it must be a string naming the resource type)".into(),
                    "resourceType がありません（リソースタイプ名の文字列が必要です）".into(),
                )
            }
        };
        if !self.model.is_resource_type(rt) {
            return self.push(
                IssueType::Structure,
                loc,
                format!("Unknown resource type '{}'", shown(rt)),
                format!("不明なリソースタイプ '{}' です", shown(rt)),
            );
        }
        self.object(obj, rt, loc, true);
        if let Some(Value::Array(contained)) = obj.get("contained") {
            self.contained_rules(obj, contained, loc);
        }
    }

    /// DomainResource's rules on contained resources: none holds resources of its own
    /// (dom-2), none carries a version, update time (dom-4) or security labels (dom-5) —
    /// those belong to the container —, and each is referenced (`#id`) from the resource or
    /// another contained one, or refers to its container (`#`) itself (dom-3). A reference
    /// is any string `#…` in the resource, as R4's expression reads references, canonicals,
    /// uris and urls alike.
    fn contained_rules(&mut self, obj: &Map<String, Value>, contained: &[Value], loc: &Loc<'_>) {
        let list = Loc::Field(loc, "contained");
        let mut refs = std::collections::HashSet::new();
        obj.values().for_each(|v| local_references(v, &mut refs));
        for (i, c) in contained.iter().enumerate() {
            let Some(c) = c.as_object() else { continue };
            let at = Loc::Index(&list, i);
            if c.contains_key("contained") {
                self.push(
                    IssueType::Invalid,
                    &Loc::Field(&at, "contained"),
                    "A contained resource cannot contain resources itself (dom-2)".into(),
                    "contained のリソースがさらにリソースを含むことはできません（dom-2）".into(),
                );
            }
            let meta = c.get("meta").and_then(Value::as_object);
            for (key, rule) in [("versionId", "dom-4"), ("lastUpdated", "dom-4"), ("security", "dom-5")] {
                if meta.is_some_and(|m| m.contains_key(key)) {
                    self.push(
                        IssueType::Invalid,
                        &Loc::Field(&Loc::Field(&at, "meta"), key),
                        format!("A contained resource has no meta.{key} of its own; its container's applies ({rule})"),
                        format!("contained のリソースは meta.{key} を持てません（含んでいるリソースのものが適用されます。{rule}）"),
                    );
                }
            }
            let id = c.get("id").and_then(Value::as_str).unwrap_or("");
            let referenced = refs.contains(format!("#{id}").as_str()) && !id.is_empty() || {
                let mut inner = std::collections::HashSet::new();
                c.values().for_each(|v| local_references(v, &mut inner));
                inner.contains("#")
            };
            if !referenced {
                self.push(
                    IssueType::Invalid,
                    &at,
                    format!("The contained resource '{id}' is not referenced from the resource containing it (dom-3)"),
                    format!("contained のリソース '{id}' が、含んでいるリソースから参照されていません（dom-3）"),
                );
            }
        }
    }

    /// Checks the properties of one object whose definition is `parent` (type name or
    /// backbone path), then its required elements.
    fn object(&mut self, obj: &Map<String, Value>, parent: &str, loc: &Loc<'_>, is_resource: bool) {
        if obj.is_empty() {
            self.push(
                IssueType::Invalid,
                loc,
                "Empty objects are not allowed".into(),
                "空のオブジェクトは使用できません".into(),
            );
            return;
        }
        // Element definitions present, by path, with the JSON name that used them.
        let mut present: Vec<(&'static str, &str)> = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            if self.truncated {
                return;
            }
            if is_resource && k == "resourceType" {
                continue;
            }
            let (base, is_ext) = match k.strip_prefix('_') {
                Some(b) => (b, true),
                None => (k.as_str(), false),
            };
            let child_loc = Loc::Field(loc, base);
            let Some((def, ty)) = crate::names::child(self.model, parent, base) else {
                self.unknown(parent, k, &child_loc);
                continue;
            };
            match present.iter().find(|(p, _)| *p == def.path) {
                Some((_, other)) if *other != base => {
                    self.push(
                        IssueType::Structure,
                        &child_loc,
                        format!("Only one type of '{}[x]' may be present (found '{other}' and '{base}')", def.name),
                        format!("'{}[x]' は一つの型のみ指定できます（'{other}' と '{base}' があります）", def.name),
                    );
                }
                Some(_) => {}
                None => present.push((def.path, base)),
            }
            let is_primitive = self.model.is_primitive(ty.code);
            if is_ext {
                if !is_primitive {
                    self.push(
                        IssueType::Structure,
                        &child_loc,
                        format!("'{k}' is only allowed for primitive elements"),
                        format!("'{k}' はプリミティブ要素にのみ使用できます"),
                    );
                } else {
                    self.companion(v, obj.get(base), def, &child_loc);
                }
                continue;
            }
            // `id` of a resource is declared as a plain string but has the `id` type's format.
            let code = if is_resource && base == "id" { "id" } else { ty.code };
            let ext = if is_primitive && def.is_array() { obj.get(&format!("_{base}")) } else { None };
            self.value(v, ext, def, ty, code, is_primitive, &child_loc);
        }
        for def in self.model.children(parent) {
            if def.min > 0 && !present.iter().any(|(p, _)| *p == def.path) {
                let name = if def.choice { format!("{}[x]", def.name) } else { def.name.to_string() };
                self.push(
                    IssueType::Required,
                    &Loc::Field(loc, def.name),
                    format!("Missing required element '{name}' (minimum cardinality {})", def.min),
                    format!("必須要素 '{name}' がありません（最小出現回数 {}）", def.min),
                );
            }
        }
    }

    fn unknown(&mut self, parent: &str, key: &str, loc: &Loc<'_>) {
        // Name a bad choice suffix as such: `valueFoo` on an element with `value[x]`.
        let base = key.trim_start_matches('_');
        for (i, _) in base.char_indices().filter(|(_, c)| c.is_ascii_uppercase()) {
            let prefix = &base[..i];
            if let Some(def) = self.model.element(&format!("{}.{prefix}", self.resolve(parent))).filter(|d| d.choice) {
                let allowed: Vec<&str> = def.types.iter().map(|t| t.code).collect();
                return self.push(
                    IssueType::Structure,
                    loc,
                    format!(
                        "Unknown element '{key}': '{prefix}[x]' does not allow type '{}' (allowed: {})",
                        &base[i..],
                        allowed.join(", ")
                    ),
                    format!(
                        "不明な要素 '{key}' です: '{prefix}[x]' に型 '{}' は使用できません（使用可能: {}）",
                        &base[i..],
                        allowed.join(", ")
                    ),
                );
            }
        }
        self.push(IssueType::Structure, loc, format!("Unknown element '{key}'"), format!("不明な要素 '{key}' です"));
    }

    /// Backbone paths with a content reference resolve to the referenced definition.
    fn resolve<'p>(&self, parent: &'p str) -> &'p str {
        match self.model.element(parent).and_then(|e| e.content_ref) {
            Some(r) => r,
            None => parent,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn value(
        &mut self,
        v: &Value,
        ext: Option<&Value>,
        def: &ElementDef,
        ty: &TypeRef,
        code: &str,
        is_primitive: bool,
        loc: &Loc<'_>,
    ) {
        if def.is_array() {
            let Value::Array(items) = v else {
                self.push(
                    IssueType::Structure,
                    loc,
                    format!("Element '{}' must be a JSON array (it can repeat)", def.name),
                    format!("要素 '{}' は繰り返し可能なため JSON 配列で指定してください", def.name),
                );
                return;
            };
            if items.is_empty() {
                return self.push(
                    IssueType::Invalid,
                    loc,
                    "Empty arrays are not allowed".into(),
                    "空の配列は使用できません".into(),
                );
            }
            if let Some(max) = def.max {
                if items.len() > max as usize {
                    self.push(
                        IssueType::Invalid,
                        loc,
                        format!("Element '{}' has {} items but at most {max} are allowed", def.name, items.len()),
                        format!("要素 '{}' は {} 件ありますが、最大 {max} 件までです", def.name, items.len()),
                    );
                }
            }
            if self.split && !is_primitive && items.len() >= SPLIT_ITEMS && cores() > 1 {
                return self.split_items(items, def, ty, code, loc);
            }
            let exts = ext.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                if self.truncated {
                    return;
                }
                let item_loc = Loc::Index(loc, i);
                if item.is_null() && is_primitive {
                    // A null value is a placeholder for an entry that only has extensions.
                    let paired = exts.and_then(|e| e.get(i)).is_some_and(|e| !e.is_null());
                    if !paired {
                        self.null_value(def, &item_loc);
                    }
                    continue;
                }
                self.item(item, def, ty, code, is_primitive, &item_loc);
            }
        } else {
            if v.is_array() {
                return self.push(
                    IssueType::Structure,
                    loc,
                    format!("Element '{}' must not be an array (maximum cardinality 1)", def.name),
                    format!("要素 '{}' は最大出現回数が 1 のため配列にできません", def.name),
                );
            }
            if v.is_null() {
                return self.null_value(def, loc);
            }
            self.item(v, def, ty, code, is_primitive, loc);
        }
    }

    /// The items of a long array of complex values, the second half on another thread;
    /// its issues follow the first half's, cut at `max_issues` as one walk would.
    fn split_items(&mut self, items: &[Value], def: &ElementDef, ty: &TypeRef, code: &str, loc: &Loc<'_>) {
        let half = items.len() / 2;
        let mut other = Checker { issues: Vec::new(), split: false, ..*self };
        self.split = false;
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for (i, item) in items.iter().enumerate().skip(half) {
                    if other.truncated {
                        break;
                    }
                    other.item(item, def, ty, code, false, &Loc::Index(loc, i));
                }
            });
            for (i, item) in items.iter().enumerate().take(half) {
                if self.truncated {
                    break;
                }
                self.item(item, def, ty, code, false, &Loc::Index(loc, i));
            }
        });
        self.split = true;
        if self.truncated {
            return;
        }
        for issue in other.issues {
            if self.issues.len() >= self.max_issues {
                self.truncated = true;
                return;
            }
            self.issues.push(issue);
        }
        self.truncated |= other.truncated;
    }

    fn null_value(&mut self, def: &ElementDef, loc: &Loc<'_>) {
        self.push(
            IssueType::Structure,
            loc,
            format!("null is only allowed in arrays of primitives, paired with an entry in '_{}'", def.name),
            format!("null は '_{}' の要素と対になるプリミティブ配列の中でのみ使用できます", def.name),
        );
    }

    fn item(&mut self, v: &Value, def: &ElementDef, ty: &TypeRef, code: &str, is_primitive: bool, loc: &Loc<'_>) {
        if def.xhtml {
            match v.as_str() {
                Some(div) => {
                    if let Err((en, ja)) = crate::xhtml::check_narrative(div) {
                        self.push(IssueType::Value, loc, en, ja);
                    }
                }
                None => self.wrong_kind(def, "xhtml", JsonKind::String, loc),
            }
            return;
        }
        if is_primitive {
            return self.primitive(v, def, code, loc);
        }
        if ty.code == "Resource" {
            return self.resource(v, loc);
        }
        match v {
            Value::Object(obj) => {
                let child_parent = self.model.child_parent(def, ty);
                self.object(obj, child_parent, loc, false);
            }
            _ => self.push(
                IssueType::Structure,
                loc,
                format!("Element '{}' must be a JSON object", def.name),
                format!("要素 '{}' は JSON オブジェクトで指定してください", def.name),
            ),
        }
    }

    fn wrong_kind(&mut self, def: &ElementDef, code: &str, kind: JsonKind, loc: &Loc<'_>) {
        let (en, ja) = kind_names(kind);
        self.push(
            IssueType::Structure,
            loc,
            format!("Element '{}' of type {code} must be a JSON {en}", def.name),
            format!("型 {code} の要素 '{}' は JSON の{ja}で指定してください", def.name),
        );
    }

    fn bad_format(&mut self, text: &str, code: &str, loc: &Loc<'_>) {
        let (en, ja) = format_hint(code, text);
        self.push(
            IssueType::Value,
            loc,
            format!("Value '{}' is not a valid {code}{en}", shown(text)),
            format!("値 '{}' は {code} 型として不正です{ja}", shown(text)),
        );
    }

    fn primitive(&mut self, v: &Value, def: &ElementDef, code: &str, loc: &Loc<'_>) {
        let kind = json_kind(code);
        match (kind, v) {
            (JsonKind::Bool, Value::Bool(_)) => {}
            (JsonKind::Number, Value::Number(n)) => {
                let text = n.to_string();
                if regexes().get(code).is_some_and(|re| !re.is_match(&text)) {
                    return self.bad_format(&text, code, loc);
                }
                if code != "decimal" {
                    let (lo, hi) = match code {
                        "positiveInt" => (1, i32::MAX as i64),
                        "unsignedInt" => (0, i32::MAX as i64),
                        _ => (i32::MIN as i64, i32::MAX as i64),
                    };
                    if !text.parse::<i64>().is_ok_and(|i| (lo..=hi).contains(&i)) {
                        self.push(
                            IssueType::Value,
                            loc,
                            format!("Value {} is out of range for {code}", shown(&text)),
                            format!("値 {} は {code} 型の範囲外です", shown(&text)),
                        );
                    }
                }
            }
            (JsonKind::String, Value::String(s)) => {
                if s.is_empty() {
                    return self.push(
                        IssueType::Invalid,
                        loc,
                        "Empty strings are not allowed".into(),
                        "空の文字列は使用できません".into(),
                    );
                }
                if !matches_format(code, s) {
                    return self.bad_format(s, code, loc);
                }
                // What XML cannot carry (U+FFFE/U+FFFF, most C0 controls) could be stored but
                // never read back as XML.
                if let Some(c) = crate::first_non_xml_char(s) {
                    return self.push(
                        IssueType::Invalid,
                        loc,
                        format!("Character U+{:04X} cannot appear in a FHIR string (XML cannot carry it)", c as u32),
                        format!("文字 U+{:04X} は FHIR の文字列に使用できません（XML で表せません）", c as u32),
                    );
                }
                if code == "code" {
                    self.binding(s, def, loc);
                }
            }
            _ => self.wrong_kind(def, code, kind, loc),
        }
    }

    fn binding(&mut self, code: &str, def: &ElementDef, loc: &Loc<'_>) {
        let Some(b) = def.binding.as_ref().filter(|b| b.strength == BindingStrength::Required) else {
            return;
        };
        let Some(systems) = self.model.value_set_codes(b.value_set) else {
            return;
        };
        if !systems.iter().any(|(_, codes)| codes.contains(&code)) {
            let vs = b.value_set.split('|').next().unwrap_or(b.value_set);
            self.push(
                IssueType::CodeInvalid,
                loc,
                format!("Code '{}' is not in the required value set {vs}", shown(code)),
                format!("コード '{}' は必須バインディングの値セット {vs} に含まれていません", shown(code)),
            );
        }
    }

    /// `_name`: an object (or, for repeating elements, an array of objects and nulls aligned
    /// with `name`) holding only `id` and `extension`.
    fn companion(&mut self, v: &Value, value: Option<&Value>, def: &ElementDef, loc: &Loc<'_>) {
        if def.is_array() {
            let Value::Array(items) = v else {
                return self.push(
                    IssueType::Structure,
                    loc,
                    format!("'_{}' must be a JSON array, aligned with '{}'", def.name, def.name),
                    format!("'_{}' は '{}' と対応する JSON 配列で指定してください", def.name, def.name),
                );
            };
            if items.is_empty() {
                return self.push(
                    IssueType::Invalid,
                    loc,
                    "Empty arrays are not allowed".into(),
                    "空の配列は使用できません".into(),
                );
            }
            let values = value.and_then(Value::as_array);
            if values.is_some_and(|vs| vs.len() != items.len()) {
                self.push(
                    IssueType::Structure,
                    loc,
                    format!("'_{0}' must have the same number of items as '{0}'", def.name),
                    format!("'_{0}' は '{0}' と同じ件数で指定してください", def.name),
                );
            }
            if values.is_none() {
                if let Some(max) = def.max.filter(|m| items.len() > *m as usize) {
                    self.push(
                        IssueType::Invalid,
                        loc,
                        format!("Element '{}' has {} items but at most {max} are allowed", def.name, items.len()),
                        format!("要素 '{}' は {} 件ありますが、最大 {max} 件までです", def.name, items.len()),
                    );
                }
            }
            for (i, item) in items.iter().enumerate() {
                if self.truncated {
                    return;
                }
                let item_loc = Loc::Index(loc, i);
                if item.is_null() {
                    let paired = values.and_then(|vs| vs.get(i)).is_some_and(|v| !v.is_null());
                    if !paired {
                        self.null_value(def, &item_loc);
                    }
                    continue;
                }
                if values.and_then(|vs| vs.get(i)).is_none_or(Value::is_null) {
                    self.required_code_absent(def, &item_loc);
                }
                self.companion_object(item, def, &item_loc);
            }
        } else {
            if v.is_array() {
                return self.push(
                    IssueType::Structure,
                    loc,
                    format!("'_{}' must not be an array (maximum cardinality 1)", def.name),
                    format!("'_{}' は最大出現回数が 1 のため配列にできません", def.name),
                );
            }
            if value.is_none() {
                self.required_code_absent(def, loc);
            }
            self.companion_object(v, def, loc);
        }
    }

    /// A code with a required binding that carries only extensions (a data-absent reason,
    /// say) still needs its code: the binding says the concept "SHALL be from" the value set
    /// (terminologies.html §required), and the HL7 validator reports its absence.
    fn required_code_absent(&mut self, def: &ElementDef, loc: &Loc<'_>) {
        let coded = def.types.iter().any(|t| t.code == "code");
        let Some(b) = def.binding.as_ref().filter(|b| coded && b.strength == BindingStrength::Required) else {
            return;
        };
        let vs = b.value_set.split('|').next().unwrap_or(b.value_set);
        self.push(
            IssueType::CodeInvalid,
            loc,
            format!("No code is given, and a code from the required value set {vs} is needed"),
            format!("コードがありません。必須バインディングの値セット {vs} のコードが必要です"),
        );
    }

    fn companion_object(&mut self, v: &Value, def: &ElementDef, loc: &Loc<'_>) {
        let Some(obj) = v.as_object() else {
            return self.push(
                IssueType::Structure,
                loc,
                format!("'_{}' entries must be JSON objects holding id and extension", def.name),
                format!("'_{}' の要素は id と extension を持つ JSON オブジェクトで指定してください", def.name),
            );
        };
        // Its content is an `Element`: `id` and `extension`, nothing else.
        self.object(obj, "Element", loc, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URI naming a UUID or an OID that is not one says what must follow the prefix.
    #[test]
    fn a_bad_uuid_or_oid_uri_says_why() {
        let bundle = |url: &str| serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": url}]});
        let issues = |url: &str| check_structure(&bundle(url));
        assert!(issues("urn:uuid:0a1b2c3d-0000-4000-8000-00000000000f").is_empty());
        assert!(issues("urn:oid:1.2.392.100495.20.3.51").is_empty());
        let uuid = issues("urn:uuid:a");
        assert_eq!(uuid.len(), 1);
        assert!(uuid[0].message_en.ends_with("comes a UUID in lowercase hexadecimal (8-4-4-4-12 digits)"), "{uuid:?}");
        assert!(uuid[0].message_ja.contains("UUID"), "{uuid:?}");
        assert!(issues("urn:oid:x.1")[0].message_en.contains("after urn:oid: comes an OID"));
        assert!(issues("http://example.org/a b")[0].message_en.ends_with("is not a valid uri"));
    }

    fn walk(resource: &Value, max_issues: usize, split: bool) -> Vec<String> {
        let mut c = Checker { model: tsunagu_model::r4(), issues: Vec::new(), max_issues, truncated: false, split };
        c.resource(resource, &Loc::Root("Bundle"));
        let mut out: Vec<String> = c.issues.iter().map(|i| i.location.clone()).collect();
        out.push(format!("truncated={}", c.truncated));
        out
    }

    /// A long array checked on two threads reports what one walk reports, in its order,
    /// cut at `max_issues` in the same place.
    #[test]
    fn a_split_array_reports_as_one_walk_would() {
        let bad = [3usize, 10, 49, 50, 51, 70, 99];
        let entries: Vec<Value> = (0..100)
            .map(|i| {
                let mut patient = serde_json::json!({"resourceType": "Patient", "gender": "male"});
                if bad.contains(&i) {
                    patient["unknownElement"] = Value::Bool(true);
                    patient["gender"] = Value::from(7);
                }
                serde_json::json!({"fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{i:012}"), "resource": patient, "request": {"method": "POST", "url": "Patient"}})
            })
            .collect();
        let bundle = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        for max in [0, 1, 2, 5, 6, 7, 13, 14, 15, 100] {
            let one = walk(&bundle, max, false);
            assert_eq!(walk(&bundle, max, true), one, "max_issues {max}");
        }
        let all = walk(&bundle, 100, true);
        assert_eq!(all.len(), 2 * bad.len() + 1);
        assert!(all[0].starts_with("Bundle.entry[3]") && all[13].starts_with("Bundle.entry[99]"), "{all:?}");
    }
}
