//! MEDIS ICD10対応標準病名マスター, 病名基本テーブル (the `nmain` file): one row per
//! disease name, keyed for exchange by the 4-character 病名交換用コード, with an ICD-10
//! (2013) classification.
//!
//! Layout: the field list of the 病名基本テーブル as published with the byomei.org
//! disEXPANDER description (変更区分, 病名管理番号, 病名表記, 病名表記カナ, 採択区分,
//! 病名交換用コード, ICD10, ICD10複数分類コード, ICD10確度, 複数ICD候補, レセ電算コード, …,
//! 移行先病名管理番号, …). Whether MEDIS's distributed `nmain` text file keeps exactly this
//! order could not be confirmed from public material, so the order is only the fallback:
//! a header row, when present, decides.

use serde_json::{json, Value};

use super::{code_system, concept, designate, is_code, locate, property, Column, MasterLoad};
use super::{ICD10_URL, MEDIS_DISEASE_URL, MEDIS_ICD10_MAP_URL};
use crate::error::{Result, TerminologyError};
use crate::masters::delimited::Record;

const CHANGE: usize = 0;
const RECORD_NO: usize = 1;
const NAME: usize = 2;
const KANA: usize = 3;
const EXCHANGE: usize = 4;
const ICD10: usize = 5;
const RECEIPT: usize = 6;
const MOVED_TO: usize = 7;

const COLUMNS: [Column; 8] = [
    Column { aliases: &["変更区分"], position: Some(0) },
    Column { aliases: &["病名管理番号", "管理番号"], position: Some(1) },
    Column { aliases: &["病名表記", "病名"], position: Some(2) },
    Column { aliases: &["病名表記カナ", "カナ", "病名カナ"], position: Some(3) },
    Column { aliases: &["病名交換用コード", "交換用コード"], position: Some(5) },
    Column { aliases: &["ICD10-2013", "ICD10", "ICD10コード", "ICD-10"], position: Some(6) },
    Column {
        aliases: &["レセ電算コード", "傷病名コード", "レセプト電算処理システム傷病名コード"], position: Some(10)
    },
    Column { aliases: &["移行先病名管理番号"], position: Some(15) },
];

pub(crate) fn load(records: &[Record]) -> Result<MasterLoad> {
    let layout = locate(records, &COLUMNS);
    let mut concepts = Vec::new();
    let mut elements = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = rustc_hash::FxHashSet::default();
    for r in layout.rows {
        let code = layout.get(r, EXCHANGE);
        let name = layout.get(r, NAME);
        if !is_code(code, 4) {
            return Err(TerminologyError::master(
                r.line,
                format!("病名交換用コード '{code}' is not 4 letters or digits"),
            ));
        }
        if name.is_empty() {
            return Err(TerminologyError::master(r.line, "病名表記 is empty"));
        }
        if !seen.insert(code.to_owned()) {
            warnings.push(format!("line {}: 病名交換用コード {code} repeats; the first row is kept", r.line));
            continue;
        }
        let mut c = concept(code, name);
        designate(&mut c, "ja-Kana", layout.get(r, KANA));
        property(&mut c, "recordNo", "valueString", layout.get(r, RECORD_NO));
        let icd = layout.get(r, ICD10).replace(['.', ' '], "").to_ascii_uppercase();
        property(&mut c, "icd10", "valueString", &icd);
        property(&mut c, "receiptCode", "valueString", layout.get(r, RECEIPT));
        property(&mut c, "changeType", "valueString", layout.get(r, CHANGE));
        // A name moved to another record is kept but retired, so old data still validates.
        if !layout.get(r, MOVED_TO).is_empty() {
            property(&mut c, "status", "valueCode", "retired");
        }
        if !icd.is_empty() {
            elements.push(json!({
                "code": code,
                "display": name,
                "target": [{"code": icd, "equivalence": "wider"}],
            }));
        }
        concepts.push(Value::Object(c));
    }
    let count = concepts.len();
    let properties = [
        ("recordNo", "string", "病名管理番号"),
        ("icd10", "string", "ICD-10 (2013) classification"),
        ("receiptCode", "string", "レセプト電算処理システム傷病名コード"),
        ("changeType", "string", "変更区分 as in the master"),
        ("status", "code", "retired when the name moved to another record"),
    ];
    let cs = code_system(
        MEDIS_DISEASE_URL,
        "MEDISDiseaseExchangeCode",
        "MEDIS 標準病名マスター 病名交換用コード",
        &properties,
        concepts,
    );
    let map = (!elements.is_empty()).then(|| {
        json!({
            "resourceType": "ConceptMap",
            "url": MEDIS_ICD10_MAP_URL,
            "name": "MEDISDiseaseToICD10",
            "title": "MEDIS 標準病名マスター → ICD-10 (2013)",
            "status": "active",
            // An ICD-10 category classifies the disease name: the target is wider.
            "group": [{"source": MEDIS_DISEASE_URL, "target": ICD10_URL, "element": elements}],
        })
    });
    Ok(MasterLoad { code_system: cs, concept_map: map, count, warnings })
}
