//! JLAC10 臨床検査マスター: 17-character codes made of five elements: 分析物 (analyte, 5),
//! 識別 (identification, 4), 材料 (material, 3), 測定法 (method, 3) and 結果識別 (result
//! kind, 2), as published by the Japanese Society of Laboratory Medicine (JSLM).
//!
//! Layout: JSLM publishes the element tables as spreadsheets and MEDIS's 臨床検査マスター
//! file layout could not be confirmed from public material, so this loader is
//! header-driven: the code is read from a 17-digit column (JLAC10, JLAC10コード, …) or
//! assembled from the five element columns, the name from 検査項目名 / 項目名称 / 名称.
//! Without a header the columns are taken as `code, name, kana, unit`.

use serde_json::Value;

use super::{code_system, concept, designate, is_code, locate, property, Column, MasterLoad, JLAC10_URL};
use crate::error::{Result, TerminologyError};
use crate::masters::delimited::Record;

const CODE: usize = 0;
const NAME: usize = 1;
const KANA: usize = 2;
const UNIT: usize = 3;
const ELEMENTS: [usize; 5] = [4, 5, 6, 7, 8];
/// Element widths and property codes, in code order.
const PARTS: [(usize, &str); 5] =
    [(5, "analyte"), (4, "identification"), (3, "material"), (3, "method"), (2, "resultKind")];

const COLUMNS: [Column; 9] = [
    Column {
        aliases: &["JLAC10", "JLAC10コード", "JLAC10 17桁", "17桁コード", "臨床検査項目分類コード"],
        position: Some(0),
    },
    Column { aliases: &["検査項目名", "項目名称", "検査名称", "名称", "項目名"], position: Some(1) },
    Column { aliases: &["カナ名称", "項目名カナ", "検査項目名カナ", "カナ"], position: Some(2) },
    Column { aliases: &["単位", "結果単位"], position: Some(3) },
    Column { aliases: &["分析物コード", "分析物"], position: None },
    Column { aliases: &["識別コード", "識別"], position: None },
    Column { aliases: &["材料コード", "材料"], position: None },
    Column { aliases: &["測定法コード", "測定法"], position: None },
    Column { aliases: &["結果識別コード", "結果識別"], position: None },
];

pub(crate) fn load(records: &[Record]) -> Result<MasterLoad> {
    let layout = locate(records, &COLUMNS);
    let assembled = !layout.has(CODE) && ELEMENTS.iter().all(|&e| layout.has(e));
    let mut concepts = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = rustc_hash::FxHashSet::default();
    for r in layout.rows {
        let code: String = if assembled {
            ELEMENTS.iter().map(|&e| layout.get(r, e)).collect()
        } else {
            layout.get(r, CODE).replace(['-', ' '], "")
        };
        if !is_code(&code, 17) {
            return Err(TerminologyError::master(r.line, format!("JLAC10 code '{code}' is not 17 letters or digits")));
        }
        let name = layout.get(r, NAME);
        if name.is_empty() {
            return Err(TerminologyError::master(r.line, "the test name is empty"));
        }
        if !seen.insert(code.clone()) {
            warnings.push(format!("line {}: JLAC10 code {code} repeats; the first row is kept", r.line));
            continue;
        }
        let mut c = concept(&code, name);
        designate(&mut c, "ja-Kana", layout.get(r, KANA));
        let mut at = 0;
        for (width, name) in PARTS {
            property(&mut c, name, "valueString", &code[at..at + width]);
            at += width;
        }
        property(&mut c, "unit", "valueString", layout.get(r, UNIT));
        concepts.push(Value::Object(c));
    }
    let count = concepts.len();
    let properties = [
        ("analyte", "string", "分析物コード (5)"),
        ("identification", "string", "識別コード (4)"),
        ("material", "string", "材料コード (3)"),
        ("method", "string", "測定法コード (3)"),
        ("resultKind", "string", "結果識別コード (2)"),
        ("unit", "string", "単位"),
    ];
    let cs = code_system(JLAC10_URL, "JLAC10", "JLAC10 臨床検査項目分類コード (17桁)", &properties, concepts);
    Ok(MasterLoad { code_system: cs, concept_map: None, count, warnings })
}
