//! Loaders for the Japanese standard masters (標準マスター): each turns a master file, in
//! Shift_JIS or UTF-8, into a complete CodeSystem (and, where the master carries a
//! correspondence, a ConceptMap) ready for [`crate::Terminology::add`].
//!
//! Columns are found by their Japanese header names when the file has a header row;
//! without one, the published (or closest documented) column order is assumed. Each
//! format module says which layout it follows and how sure that is.

mod delimited;
mod hot;
mod jlac10;
mod medis;
mod yj;

use serde_json::{json, Map, Value};

use crate::error::Result;
use delimited::{header_key, Record};

/// JLAC10 17-digit laboratory codes.
pub const JLAC10_URL: &str = "http://medis.or.jp/CodeSystem/master-JLAC10-17digits";
/// MEDIS 標準病名マスター 病名交換用コード.
pub const MEDIS_DISEASE_URL: &str = "http://medis.or.jp/CodeSystem/master-disease-exCode";
/// HOT9 (医薬品HOTコードマスター, first nine digits of the HOT code).
pub const HOT9_URL: &str = "http://medis.or.jp/CodeSystem/master-HOT9";
/// YJ code (個別医薬品コード).
pub const YJ_URL: &str = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
/// ICD-10 (2013) as used by JP Core.
pub const ICD10_URL: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full";
/// This server's own canonical for the disease-master correspondence to ICD-10; MEDIS
/// publishes no ConceptMap, so the URL is ours.
pub const MEDIS_ICD10_MAP_URL: &str = "urn:tsunagu:ConceptMap:medis-disease-exCode-to-ICD10-2013";

/// Which master a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterFormat {
    /// MEDIS ICD10対応標準病名マスター, 病名基本テーブル (`nmain` file).
    MedisDisease,
    /// JLAC10 臨床検査マスター (17-digit codes).
    Jlac10,
    /// MEDIS 医薬品HOTコードマスター, loaded as HOT9.
    Hot,
    /// YJ codes (個別医薬品コード), from any file with a YJ column.
    Yj,
}

/// What a master file became.
#[derive(Debug, Clone)]
pub struct MasterLoad {
    /// A CodeSystem with `content` complete; set `version` before adding if wanted.
    pub code_system: Value,
    /// A ConceptMap when the master carries a correspondence (disease → ICD-10).
    pub concept_map: Option<Value>,
    /// Concepts in the CodeSystem.
    pub count: usize,
    /// Rows skipped or merged, each naming its line.
    pub warnings: Vec<String>,
}

/// Reads one master file (any size; malformed lines are errors naming the line).
pub fn load_master(format: MasterFormat, bytes: &[u8]) -> Result<MasterLoad> {
    let text = delimited::decode(bytes)?;
    let records = delimited::records(&text)?;
    match format {
        MasterFormat::MedisDisease => medis::load(&records),
        MasterFormat::Jlac10 => jlac10::load(&records),
        MasterFormat::Hot => hot::load(&records),
        MasterFormat::Yj => yj::load(&records),
    }
}

/// A column a loader wants: header names it is known by, and its position when the file
/// has no header row.
pub(crate) struct Column {
    pub aliases: &'static [&'static str],
    pub position: Option<usize>,
}

/// Where each wanted column is, and which records are data.
pub(crate) struct Layout<'r> {
    at: Vec<Option<usize>>,
    pub rows: &'r [Record],
}

impl Layout<'_> {
    /// Column `c` (by its index in the wanted list) of a record, trimmed; empty if absent.
    pub fn get<'a>(&self, r: &'a Record, c: usize) -> &'a str {
        self.at[c].map_or("", |i| r.get(i))
    }

    pub fn has(&self, c: usize) -> bool {
        self.at[c].is_some()
    }
}

/// Finds the columns: by header when the first record names at least two wanted columns,
/// else by position.
pub(crate) fn locate<'r>(records: &'r [Record], wanted: &[Column]) -> Layout<'r> {
    if let Some(first) = records.first() {
        let keys: Vec<String> = first.fields.iter().map(|f| header_key(f)).collect();
        let find = |c: &Column| {
            c.aliases.iter().find_map(|a| {
                let a = header_key(a);
                keys.iter().position(|k| *k == a)
            })
        };
        let at: Vec<Option<usize>> = wanted.iter().map(find).collect();
        if at.iter().filter(|a| a.is_some()).count() >= 2 {
            return Layout { at, rows: &records[1..] };
        }
    }
    Layout { at: wanted.iter().map(|c| c.position).collect(), rows: records }
}

/// A concept of a master CodeSystem.
pub(crate) fn concept(code: &str, display: &str) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("code".into(), code.into());
    if !display.is_empty() {
        c.insert("display".into(), display.into());
    }
    c
}

/// Adds a designation (skipped when empty).
pub(crate) fn designate(c: &mut Map<String, Value>, language: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let list = c.entry("designation").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = list {
        a.push(json!({"language": language, "value": value}));
    }
}

/// Adds a `valueString` / `valueCode` property (skipped when empty).
pub(crate) fn property(c: &mut Map<String, Value>, code: &str, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let list = c.entry("property").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = list {
        let mut p = Map::new();
        p.insert("code".into(), code.into());
        p.insert(key.into(), value.into());
        a.push(Value::Object(p));
    }
}

/// The CodeSystem resource around loaded concepts. `properties` are `(code, type,
/// description)`.
pub(crate) fn code_system(
    url: &str,
    name: &str,
    title: &str,
    properties: &[(&str, &str, &str)],
    concepts: Vec<Value>,
) -> Value {
    let properties: Vec<Value> =
        properties.iter().map(|(c, t, d)| json!({"code": c, "type": t, "description": d})).collect();
    json!({
        "resourceType": "CodeSystem",
        "url": url,
        "name": name,
        "title": title,
        "status": "active",
        "content": "complete",
        "caseSensitive": true,
        "count": concepts.len(),
        "property": properties,
        "concept": concepts,
    })
}

/// Whether `s` is exactly `len` ASCII letters or digits.
pub(crate) fn is_code(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}
