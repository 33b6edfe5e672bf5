//! MEDIS 医薬品HOTコードマスター, loaded as HOT9: the first nine digits of the 13-digit
//! 基準番号(HOT) (処方用 7 + 会社用 2) name a product of one company, whatever its package.
//!
//! Layout: the column names are those of the MEDIS master (基準番号(HOTコード),
//! 処方用番号(HOT7), 会社識別用番号, 調剤用番号, 物流用番号, JANコード, 薬価基準収載医薬品コード,
//! 個別医薬品コード, レセプト電算処理システムコード(1), (2), 告示名称, 販売名,
//! レセプト電算処理システム医薬品名, 規格単位, 包装形態, …, 製造会社, 販売会社, 更新区分,
//! 更新年月日); the order used without a header row is this list, which could not be
//! checked against MEDIS's own layout document, so a header row decides when present.

use serde_json::Value;

use super::{code_system, concept, designate, locate, property, Column, MasterLoad, HOT9_URL};
use crate::error::{Result, TerminologyError};
use crate::masters::delimited::Record;

const HOT13: usize = 0;
const YAKKA: usize = 1;
const YJ: usize = 2;
const RECEIPT: usize = 3;
const NOTICE_NAME: usize = 4;
const BRAND: usize = 5;
const UNIT: usize = 6;
const MAKER: usize = 7;

const COLUMNS: [Column; 8] = [
    Column {
        aliases: &["基準番号(HOTコード)", "基準番号(HOT)", "基準番号", "HOTコード", "HOT13", "HOT番号"],
        position: Some(0),
    },
    Column { aliases: &["薬価基準収載医薬品コード", "厚労省コード"], position: Some(6) },
    Column { aliases: &["個別医薬品コード", "個別医薬品コード(YJ)", "YJコード"], position: Some(7) },
    Column {
        aliases: &["レセプト電算処理システムコード(1)", "レセプト電算処理システムコード", "レセ電算コード"],
        position: Some(8),
    },
    Column { aliases: &["告示名称"], position: Some(10) },
    Column { aliases: &["販売名"], position: Some(11) },
    Column { aliases: &["規格単位"], position: Some(13) },
    Column { aliases: &["製造会社"], position: Some(20) },
];

pub(crate) fn load(records: &[Record]) -> Result<MasterLoad> {
    let layout = locate(records, &COLUMNS);
    let mut concepts = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = rustc_hash::FxHashSet::default();
    for r in layout.rows {
        let hot = layout.get(r, HOT13);
        if !(hot.len() == 13 || hot.len() == 9) || !hot.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TerminologyError::master(r.line, format!("HOT code '{hot}' is not 13 (or 9) digits")));
        }
        let hot9 = &hot[..9];
        let brand = layout.get(r, BRAND);
        let notice = layout.get(r, NOTICE_NAME);
        let display = if brand.is_empty() { notice } else { brand };
        if display.is_empty() {
            return Err(TerminologyError::master(r.line, "both 販売名 and 告示名称 are empty"));
        }
        // Package variants share their HOT9: the first row speaks for the product.
        if !seen.insert(hot9.to_owned()) {
            continue;
        }
        let mut c = concept(hot9, display);
        if notice != display {
            designate(&mut c, "ja", notice);
        }
        property(&mut c, "hot13", "valueString", hot);
        property(&mut c, "yjCode", "valueString", layout.get(r, YJ));
        property(&mut c, "yakkaCode", "valueString", layout.get(r, YAKKA));
        property(&mut c, "receiptCode", "valueString", layout.get(r, RECEIPT));
        property(&mut c, "unit", "valueString", layout.get(r, UNIT));
        property(&mut c, "manufacturer", "valueString", layout.get(r, MAKER));
        concepts.push(Value::Object(c));
    }
    if concepts.is_empty() && !layout.rows.is_empty() {
        warnings.push("no HOT rows were read".to_owned());
    }
    let count = concepts.len();
    let properties = [
        ("hot13", "string", "基準番号(HOT) of the first package row"),
        ("yjCode", "string", "個別医薬品コード (YJ)"),
        ("yakkaCode", "string", "薬価基準収載医薬品コード"),
        ("receiptCode", "string", "レセプト電算処理システムコード"),
        ("unit", "string", "規格単位"),
        ("manufacturer", "string", "製造会社"),
    ];
    let cs = code_system(HOT9_URL, "HOT9", "医薬品HOTコード (HOT9)", &properties, concepts);
    Ok(MasterLoad { code_system: cs, concept_map: None, count, warnings })
}
