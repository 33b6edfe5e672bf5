//! YJ codes (個別医薬品コード): 12 characters, one per branded product; the first seven are
//! those of the 薬価基準収載医薬品コード.
//!
//! Layout: no single public YJ master file format exists (YJ codes travel in the HOT
//! master, in drug-database products and in conversion tables), so this loader reads any
//! comma-separated file whose header names a YJ column (個別医薬品コード, YJコード,
//! 個別12桁コード) and a name column (販売名, 医薬品名称, 商品名, 品名). Without a header the
//! HOT master column order is assumed (see `hot.rs`).

use serde_json::Value;

use super::{code_system, concept, designate, is_code, locate, property, Column, MasterLoad, YJ_URL};
use crate::error::{Result, TerminologyError};
use crate::masters::delimited::Record;

const YJ: usize = 0;
const NAME: usize = 1;
const GENERIC: usize = 2;
const UNIT: usize = 3;
const YAKKA: usize = 4;

const COLUMNS: [Column; 5] = [
    Column {
        aliases: &["個別医薬品コード", "個別医薬品コード(YJ)", "YJコード", "個別12桁コード"], position: Some(7)
    },
    Column { aliases: &["販売名", "医薬品名称", "医薬品名", "商品名", "品名"], position: Some(11) },
    Column { aliases: &["一般名称", "一般名", "告示名称"], position: Some(10) },
    Column { aliases: &["規格単位"], position: Some(13) },
    Column { aliases: &["薬価基準収載医薬品コード", "厚労省コード"], position: Some(6) },
];

pub(crate) fn load(records: &[Record]) -> Result<MasterLoad> {
    let layout = locate(records, &COLUMNS);
    let mut concepts = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = rustc_hash::FxHashSet::default();
    for r in layout.rows {
        let yj = layout.get(r, YJ);
        if !is_code(yj, 12) {
            return Err(TerminologyError::master(r.line, format!("YJ code '{yj}' is not 12 letters or digits")));
        }
        let name = layout.get(r, NAME);
        if name.is_empty() {
            return Err(TerminologyError::master(r.line, "the product name is empty"));
        }
        if !seen.insert(yj.to_owned()) {
            // Expected in HOT-layout files (one row per package); a note, not a fault.
            if warnings.len() < 100 {
                warnings.push(format!("line {}: YJ code {yj} repeats; the first row is kept", r.line));
            }
            continue;
        }
        let mut c = concept(yj, name);
        let generic = layout.get(r, GENERIC);
        if generic != name {
            designate(&mut c, "ja", generic);
        }
        property(&mut c, "unit", "valueString", layout.get(r, UNIT));
        property(&mut c, "yakkaCode", "valueString", layout.get(r, YAKKA));
        concepts.push(Value::Object(c));
    }
    let count = concepts.len();
    let properties = [("unit", "string", "規格単位"), ("yakkaCode", "string", "薬価基準収載医薬品コード")];
    let cs = code_system(YJ_URL, "YJCode", "個別医薬品コード (YJコード)", &properties, concepts);
    Ok(MasterLoad { code_system: cs, concept_map: None, count, warnings })
}
