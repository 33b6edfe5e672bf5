//! Coded values a reader should not have to decode: FHIR's required value sets for sex,
//! statuses and severities, in Japanese or English. A code outside these tables is shown as
//! written (its display, or the code itself), never dropped.

use crate::labels::Lang;

/// `(code, 日本語, English)`.
pub(crate) type Table = &'static [(&'static str, &'static str, &'static str)];

/// The reading of `code` in `table`, or `None` when the table does not know it.
pub(crate) fn word(table: Table, code: &str, lang: Lang) -> Option<&'static str> {
    table.iter().find(|(c, _, _)| *c == code).map(|&(_, ja, en)| match lang {
        Lang::Ja => ja,
        Lang::En => en,
    })
}

pub(crate) static GENDER: Table = &[
    ("male", "男性", "Male"),
    ("female", "女性", "Female"),
    ("other", "その他", "Other"),
    ("unknown", "不明", "Unknown"),
];

pub(crate) static COMPOSITION_STATUS: Table = &[
    ("preliminary", "暫定", "Preliminary"),
    ("final", "確定", "Final"),
    ("amended", "修正", "Amended"),
    ("entered-in-error", "取消（誤入力）", "Entered in error"),
];

pub(crate) static ATTEST_MODE: Table = &[
    ("personal", "本人", "Personal"),
    ("professional", "専門職", "Professional"),
    ("legal", "法的", "Legal"),
    ("official", "公式", "Official"),
];

pub(crate) static CONDITION_CLINICAL: Table = &[
    ("active", "活動中", "Active"),
    ("recurrence", "再発", "Recurrence"),
    ("relapse", "再燃", "Relapse"),
    ("inactive", "非活動", "Inactive"),
    ("remission", "寛解", "Remission"),
    ("resolved", "治癒・消失", "Resolved"),
];

pub(crate) static CONDITION_VERIFICATION: Table = &[
    ("unconfirmed", "未確定", "Unconfirmed"),
    ("provisional", "暫定", "Provisional"),
    ("differential", "鑑別診断", "Differential"),
    ("confirmed", "確定", "Confirmed"),
    ("refuted", "否定", "Refuted"),
    ("entered-in-error", "取消（誤入力）", "Entered in error"),
];

pub(crate) static ALLERGY_CLINICAL: Table =
    &[("active", "活動中", "Active"), ("inactive", "非活動", "Inactive"), ("resolved", "消失", "Resolved")];

pub(crate) static ALLERGY_CATEGORY: Table = &[
    ("food", "食物", "Food"),
    ("medication", "医薬品", "Medication"),
    ("environment", "環境", "Environment"),
    ("biologic", "生物由来", "Biologic"),
];

pub(crate) static CRITICALITY: Table =
    &[("low", "低", "Low"), ("high", "高", "High"), ("unable-to-assess", "評価不能", "Unable to assess")];

pub(crate) static SEVERITY: Table =
    &[("mild", "軽度", "Mild"), ("moderate", "中等度", "Moderate"), ("severe", "重度", "Severe")];

pub(crate) static INTERPRETATION: Table = &[
    ("N", "基準内", "Normal"),
    ("H", "高値", "High"),
    ("L", "低値", "Low"),
    ("HH", "異常高値", "Critical high"),
    ("LL", "異常低値", "Critical low"),
    ("HU", "著明高値", "Significantly high"),
    ("LU", "著明低値", "Significantly low"),
    ("A", "異常", "Abnormal"),
    ("AA", "重大な異常", "Critical abnormal"),
    ("POS", "陽性", "Positive"),
    ("NEG", "陰性", "Negative"),
    ("IND", "判定保留", "Indeterminate"),
];

pub(crate) static ENCOUNTER_CLASS: Table = &[
    ("AMB", "外来", "Ambulatory"),
    ("IMP", "入院", "Inpatient"),
    ("EMER", "救急", "Emergency"),
    ("HH", "在宅", "Home health"),
    ("VR", "オンライン", "Virtual"),
    ("ACUTE", "入院（急性期）", "Inpatient acute"),
    ("NONAC", "入院（非急性期）", "Inpatient non-acute"),
    ("OBSENC", "経過観察", "Observation encounter"),
    ("PRENC", "入院前", "Pre-admission"),
    ("SS", "短期滞在", "Short stay"),
    ("FLD", "訪問", "Field"),
];

/// Statuses and intents of requests, procedures and immunizations (request-status,
/// event-status and their siblings share most codes).
pub(crate) static STATUS: Table = &[
    ("draft", "下書き", "Draft"),
    ("active", "有効", "Active"),
    ("on-hold", "保留", "On hold"),
    ("revoked", "取消", "Revoked"),
    ("cancelled", "中止", "Cancelled"),
    ("completed", "完了", "Completed"),
    ("stopped", "中止", "Stopped"),
    ("not-done", "未実施", "Not done"),
    ("preparation", "準備中", "Preparation"),
    ("in-progress", "実施中", "In progress"),
    ("entered-in-error", "取消（誤入力）", "Entered in error"),
    ("unknown", "不明", "Unknown"),
    ("current", "現行", "Current"),
    ("superseded", "置換済", "Superseded"),
    ("final", "確定", "Final"),
    ("preliminary", "暫定", "Preliminary"),
    ("registered", "登録済", "Registered"),
    ("amended", "修正", "Amended"),
    ("corrected", "訂正", "Corrected"),
    ("finished", "終了", "Finished"),
    ("planned", "予定", "Planned"),
    ("proposal", "提案", "Proposal"),
    ("plan", "計画", "Plan"),
    ("order", "指示", "Order"),
    ("original-order", "原指示", "Original order"),
    ("option", "選択肢", "Option"),
    ("routine", "通常", "Routine"),
    ("urgent", "至急", "Urgent"),
    ("asap", "できるだけ早く", "ASAP"),
    ("stat", "緊急", "STAT"),
];

/// UCUM time units of `Timing.repeat.periodUnit` and durations.
pub(crate) static TIME_UNIT: Table = &[
    ("s", "秒", "second"),
    ("min", "分", "minute"),
    ("h", "時間", "hour"),
    ("d", "日", "day"),
    ("wk", "週", "week"),
    ("mo", "月", "month"),
    ("a", "年", "year"),
];
