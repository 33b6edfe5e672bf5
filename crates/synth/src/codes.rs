//! Small tables of real Japanese codes: the code systems JP Core and JP-CLINS name, and
//! codes taken from the JP-CLINS examples and the packages' own CodeSystems (the JLAC10
//! core-labo and eCheckup observation codes are bound as `required`, so only codes those
//! CodeSystems define appear here).

/// Code system URLs (JP Core `guide-urlmap`, JP-CLINS).
pub(crate) mod system {
    pub const INSTITUTION_NO: &str = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
    pub const INSTITUTION_EXT: &str =
        "http://jpfhir.jp/fhir/clins/Extension/StructureDefinition/JP_eCS_InstitutionNumber";
    pub const PATIENT_ID_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.51.1";
    pub const PRACTITIONER_ID_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.41.1";
    pub const INSURANCE_MEMBER: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
    pub const RESOURCE_INSTANCE: &str = "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier";
    pub const BUNDLE_IDENTIFIER: &str = "http://jpfhir.jp/fhir/clins/bundle-identifier";
    pub const BUNDLE_RESOURCE_TYPE: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/BundleResourceType_CS";
    pub const INDICATION: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JP_ehrshrs_indication";
    pub const NAME_REPRESENTATION: &str = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
    pub const MEDIS_KEY_NUMBER: &str = "http://medis.or.jp/CodeSystem/master-disease-keyNumber";
    pub const MEDIS_EXCHANGE: &str = "http://medis.or.jp/CodeSystem/master-disease-exCode";
    pub const ICD10: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/ICD10-2013-full";
    pub const CORE_LABO: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JLAC10/JP_CLINS_ObsLabResult_CoreLabo_CS";
    pub const LOCAL_LABO: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/JP_CLINS_ObsLabResult_LocalCode_CS";
    pub const SIMPLE_OBS_CATEGORY: &str = "http://jpfhir.jp/fhir/core/CodeSystem/JP_SimpleObservationCategory_CS";
    pub const YJ: &str = "http://capstandard.jp/iyaku.info/CodeSystem/YJ-code";
    pub const HOT9: &str = "http://medis.or.jp/CodeSystem/master-HOT9";
    pub const MERIT9_UNIT: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationUnitMERIT9Code";
    pub const USAGE: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/MedicationUsage_ePrescription";
    pub const MED_CATEGORY: &str = "http://jpfhir.jp/fhir/core/CodeSystem/JP_MedicationCategoryMERIT9_CS";
    pub const UCUM: &str = "http://unitsofmeasure.org";
    pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    pub const DOC_TYPE: &str = "http://jpfhir.jp/fhir/Common/CodeSystem/doc-typecodes";
    pub const DOC_SUBTYPE: &str = "http://jpfhir.jp/fhir/Common/CodeSystem/doc-subtypecodes";
    pub const DOC_SECTION: &str = "http://jpfhir.jp/fhir/clins/CodeSystem/document-section";
    pub const CHECKUP_SECTION: &str = "http://jpfhir.jp/fhir/eCheckup/CodeSystem/section-code";
    pub const CHECKUP_ITEM: &str = "urn:oid:1.2.392.200119.6.1005";
    pub const PREFECTURE: &str = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/PrefectureNo-2digits";
}

/// A prefecture with one city in it, a real postal code and telephone area code there.
pub(crate) struct Prefecture {
    pub code: &'static str,
    pub name: &'static str,
    pub city: &'static str,
    pub towns: &'static [&'static str],
    pub postal: &'static str,
    pub phone_area: &'static str,
}

const fn pref(
    code: &'static str,
    name: &'static str,
    city: &'static str,
    towns: &'static [&'static str],
    postal: &'static str,
    phone_area: &'static str,
) -> Prefecture {
    Prefecture { code, name, city, towns, postal, phone_area }
}

pub(crate) const PREFECTURES: &[Prefecture] = &[
    pref("01", "北海道", "札幌市中央区", &["北一条西", "大通西", "南三条西"], "060-0001", "011"),
    pref("04", "宮城県", "仙台市青葉区", &["一番町", "本町", "中央"], "980-0811", "022"),
    pref("11", "埼玉県", "さいたま市浦和区", &["高砂", "常盤", "仲町"], "330-0063", "048"),
    pref("12", "千葉県", "千葉市中央区", &["中央", "富士見", "新町"], "260-0013", "043"),
    pref("13", "東京都", "新宿区", &["西新宿", "四谷", "高田馬場"], "160-0023", "03"),
    pref("14", "神奈川県", "横浜市中区", &["山下町", "本町", "元町"], "231-0023", "045"),
    pref("23", "愛知県", "名古屋市中区", &["栄", "丸の内", "錦"], "460-0008", "052"),
    pref("26", "京都府", "京都市中京区", &["河原町", "烏丸", "壬生"], "604-8005", "075"),
    pref("27", "大阪府", "大阪市北区", &["梅田", "天満", "中之島"], "530-0001", "06"),
    pref("28", "兵庫県", "神戸市中央区", &["三宮町", "元町通", "北野町"], "650-0021", "078"),
    pref("34", "広島県", "広島市中区", &["基町", "紙屋町", "八丁堀"], "730-0011", "082"),
    pref("39", "高知県", "高知市", &["五台山", "帯屋町", "本町"], "781-8125", "088"),
    pref("40", "福岡県", "福岡市博多区", &["博多駅前", "中洲", "住吉"], "812-0011", "092"),
    pref("47", "沖縄県", "那覇市", &["牧志", "久茂地", "松山"], "900-0015", "098"),
];

/// A diagnosis: MEDIS 病名管理番号 (the required `medisRecordNo` slice), 病名交換用コード
/// where known, and ICD-10 (2013).
pub(crate) struct Disease {
    pub key_number: &'static str,
    pub exchange: Option<&'static str>,
    pub icd10: &'static str,
    pub icd10_display: &'static str,
    pub name: &'static str,
    /// The SS-MIX2 診療科コード of the department that treats it.
    pub department: &'static Department,
}

/// An SS-MIX2 診療科 (department) code, carried by the JP_eCS_Department extension that
/// JP_Bundle_CLINS requires on every Condition and Observation.
pub(crate) struct Department {
    pub code: &'static str,
    pub name: &'static str,
}

pub(crate) const INTERNAL_MEDICINE: Department = Department { code: "01", name: "内科" };
pub(crate) const GASTROENTEROLOGY: Department = Department { code: "06", name: "消化器科" };
pub(crate) const CARDIOLOGY: Department = Department { code: "08", name: "循環器科" };
pub(crate) const ORTHOPAEDICS: Department = Department { code: "11", name: "整形外科" };

pub(crate) const DISEASES: &[Disease] = &[
    Disease {
        key_number: "20061593",
        exchange: None,
        icd10: "I10",
        icd10_display: "本態性（原発性＜一次性＞）高血圧（症）",
        name: "高血圧症",
        department: &CARDIOLOGY,
    },
    Disease {
        key_number: "20058911",
        exchange: None,
        icd10: "I209",
        icd10_display: "狭心症，詳細不明",
        name: "狭心症",
        department: &CARDIOLOGY,
    },
    Disease {
        key_number: "20064049",
        exchange: None,
        icd10: "K269",
        icd10_display: "十二指腸潰瘍，急性か慢性か明示されない，出血又は穿孔を伴わないもの",
        name: "十二指腸潰瘍",
        department: &GASTROENTEROLOGY,
    },
    Disease {
        key_number: "20054178",
        exchange: None,
        icd10: "C169",
        icd10_display: "胃，部位不明",
        name: "胃癌",
        department: &GASTROENTEROLOGY,
    },
    Disease {
        key_number: "20075639",
        exchange: Some("L3RF"),
        icd10: "C160",
        icd10_display: "噴門",
        name: "噴門癌",
        department: &GASTROENTEROLOGY,
    },
    Disease {
        key_number: "20065011",
        exchange: None,
        icd10: "R101",
        icd10_display: "上腹部に限局する疼痛",
        name: "上腹部痛",
        department: &GASTROENTEROLOGY,
    },
    Disease {
        key_number: "20075383",
        exchange: None,
        icd10: "R104",
        icd10_display: "その他及び詳細不明の腹痛",
        name: "腹痛症",
        department: &INTERNAL_MEDICINE,
    },
    Disease {
        key_number: "20080427",
        exchange: None,
        icd10: "S529",
        icd10_display: "前腕の骨折，部位不明",
        name: "前腕骨折",
        department: &ORTHOPAEDICS,
    },
];

/// An allergen from the JFAGY code systems JP Core names.
pub(crate) struct Allergen {
    pub system: &'static str,
    pub code: &'static str,
    pub name: &'static str,
    /// AllergyIntolerance.category: `food` or `medication`.
    pub category: &'static str,
}

const FOOD: &str = "http://jpfhir.jp/fhir/core/CodeSystem/JP_JfagyFoodAllergen_CS";
const MEDICATION_ALLERGEN: &str = "http://jpfhir.jp/fhir/core/CodeSystem/GCM/JP_JfagyMedicationAllergen_CS";

pub(crate) const ALLERGENS: &[Allergen] = &[
    Allergen { system: FOOD, code: "J9FC11310000", name: "さば", category: "food" },
    Allergen { system: FOOD, code: "J9FA15000016", name: "小麦粉", category: "food" },
    Allergen { system: FOOD, code: "J9FA32540000", name: "キウイフルーツ", category: "food" },
    Allergen {
        system: MEDICATION_ALLERGEN,
        code: "GCM2260701F1ZZZ",
        name: "ポビドンヨード含嗽用液７％",
        category: "medication",
    },
];

/// A JLAC10 core-labo analyte: the group code is the slice's fixed display; `jlac10` one
/// of its 17-digit codes (serum where the group has one).
pub(crate) struct LabTest {
    pub group: &'static str,
    pub jlac10: &'static str,
    pub name: &'static str,
    pub local_code: &'static str,
    pub unit: &'static str,
    /// The reference range, in tenths of `unit`, from which values are drawn around.
    pub low_tenths: i64,
    pub high_tenths: i64,
}

const fn lab(
    group: &'static str,
    jlac10: &'static str,
    name: &'static str,
    local_code: &'static str,
    unit: &'static str,
    low_tenths: i64,
    high_tenths: i64,
) -> LabTest {
    LabTest { group, jlac10, name, local_code, unit, low_tenths, high_tenths }
}

pub(crate) const LAB_TESTS: &[LabTest] = &[
    lab("ALB", "3A015000002329101", "アルブミン", "0000181800", "g/dL", 38, 52),
    lab("TP", "3A010000002329101", "総蛋白(TP)", "0000181700", "g/dL", 66, 81),
    lab("AST", "3B035000002327201", "AST(GOT)", "0000182100", "U/L", 130, 300),
    lab("ALT", "3B045000002327201", "ALT(GPT)", "0000182200", "U/L", 70, 230),
    lab("GGT", "3B090000002327701", "γ-GTP(GGT)", "0000182400", "U/L", 90, 640),
    lab("ALP", "3B070000002327101", "アルカリホスファターゼ(ALP)", "0000182300", "U/L", 380, 1130),
    lab("LD", "3B050000002327201", "LD(LDH)", "0000182500", "U/L", 1240, 2220),
    lab("CK", "3B010000002327201", "クレアチンキナーゼ(CK)", "0000182600", "U/L", 590, 2480),
    lab("BUN", "3C025000002329101", "尿素窒素(BUN)", "0000183100", "mg/dL", 80, 200),
    lab("Cre", "3C015000002329101", "クレアチニン(Cre)", "0000183200", "mg/dL", 5, 11),
    lab("UA", "3C020000002329101", "尿酸(UA)", "0000183300", "mg/dL", 26, 70),
    lab("Na", "3H010000002327101", "ナトリウム(Na)", "0000184100", "mmol/L", 1380, 1450),
    lab("K", "3H015000002327201", "カリウム(K)", "0000184200", "mmol/L", 36, 48),
    lab("Cl", "3H020000002326101", "クロール(Cl)", "0000184300", "mmol/L", 1010, 1080),
    lab("T-CHO", "3F050000002327101", "総コレステロール(T-CHO)", "0000185100", "mg/dL", 1420, 2480),
    lab("TG", "3F015000002327101", "中性脂肪(TG)", "0000185200", "mg/dL", 400, 1490),
    lab("HDL-C", "3F070000002327101", "HDL-コレステロール(HDL-C)", "0000185300", "mg/dL", 400, 900),
    lab("LDL-C", "3F077000002327101", "LDL-コレステロール(LDL-C)", "0000185400", "mg/dL", 650, 1630),
    lab("CRP", "5C070000002306201", "Ｃ反応性蛋白(CRP)", "0000186100", "mg/dL", 0, 14),
];

/// A tablet with its YJ code (the slice the eCS prescription profile requires) and, where
/// the examples give one, its HOT9 code.
pub(crate) struct Drug {
    pub yj: &'static str,
    pub hot9: Option<&'static str>,
    pub name: &'static str,
    pub tablets_per_dose: i64,
}

pub(crate) const DRUGS: &[Drug] = &[
    Drug { yj: "1141007F3023", hot9: Some("123812902"), name: "カロナール錠５００", tablets_per_dose: 1 },
    Drug { yj: "1141007F1063", hot9: None, name: "カロナール錠３００", tablets_per_dose: 1 },
    Drug {
        yj: "2171022F6276", hot9: Some("121431401"), name: "アムロジピンＯＤ錠１０ｍｇ", tablets_per_dose: 1
    },
    Drug {
        yj: "2233002F1280",
        hot9: Some("103831601"),
        name: "カルボシステイン錠２５０ｍｇ「サワイ」",
        tablets_per_dose: 2,
    },
    Drug { yj: "2316009F1022", hot9: Some("104195801"), name: "ミヤＢＭ錠", tablets_per_dose: 1 },
    Drug { yj: "2456001F1310", hot9: Some("105271807"), name: "プレドニン錠５ｍｇ", tablets_per_dose: 1 },
    Drug { yj: "1190027F1022", hot9: None, name: "デエビゴ錠２．５ｍｇ", tablets_per_dose: 1 },
    Drug { yj: "3219100F1020", hot9: None, name: "デノタスチュアブル配合錠", tablets_per_dose: 2 },
];

/// An oral usage (JAMI 用法コード as in the ePrescription code system): how many doses a day.
pub(crate) struct Usage {
    pub code: &'static str,
    pub display: &'static str,
    pub text: &'static str,
    pub per_day: i64,
}

pub(crate) const USAGES: &[Usage] = &[
    Usage {
        code: "1011000400000000", display: "１日１回朝食後\u{3000}服用", text: "1日1回 朝食後", per_day: 1
    },
    Usage {
        code: "1011040000000000", display: "１日１回夕食後\u{3000}服用", text: "1日1回 夕食後", per_day: 1
    },
    Usage {
        code: "1011100000000000", display: "１日１回就寝前\u{3000}服用", text: "1日1回 就寝前", per_day: 1
    },
    Usage {
        code: "1013044400000000",
        display: "１日３回朝昼夕食後\u{3000}服用",
        text: "1日3回 朝昼夕食後",
        per_day: 3,
    },
];

/// A checkup item of the eCheckup observation CodeSystem (`urn:oid:1.2.392.200119.6.1005`).
pub(crate) struct CheckupItem {
    pub code: &'static str,
    pub display: &'static str,
    pub category: &'static str,
    pub unit: &'static str,
    pub low_tenths: i64,
    pub high_tenths: i64,
}

const fn item(
    code: &'static str,
    display: &'static str,
    category: &'static str,
    unit: &'static str,
    low_tenths: i64,
    high_tenths: i64,
) -> CheckupItem {
    CheckupItem { code, display, category, unit, low_tenths, high_tenths }
}

/// Height and weight come first: BMI is computed from them.
pub(crate) const CHECKUP_ITEMS: &[CheckupItem] = &[
    item("9N001000000000001", "身長", "body-measurement", "cm", 1450, 1850),
    item("9N006000000000001", "体重", "body-measurement", "kg", 420, 950),
    item("9N011000000000001", "BMI", "body-measurement", "kg/m2", 0, 0),
    item("9N016160100000001", "腹囲(実測）", "body-measurement", "cm", 650, 1000),
    item("9A751000000000001", "収縮期血圧(1回目)", "vital-signs", "mm[Hg]", 1000, 1600),
    item("9A761000000000001", "拡張期血圧(1回目)", "vital-signs", "mm[Hg]", 600, 980),
    item("3F015000002327101", "空腹時中性脂肪(トリグリセリド)", "laboratory", "mg/dL", 400, 2000),
    item("3F070000002327101", "HDLコレステロール", "laboratory", "mg/dL", 350, 900),
    item("3F077000002327101", "LDLコレステロール", "laboratory", "mg/dL", 700, 1800),
    item("3B035000002327201", "AST(GOT)", "laboratory", "U/L", 100, 450),
    item("3B045000002327201", "ALT(GPT)", "laboratory", "U/L", 70, 500),
    item("3B090000002327101", "γ-GT(γ-GTP)", "laboratory", "U/L", 100, 900),
    item("3D046000001906202", "HbA1c(NGSP値)", "laboratory", "%", 48, 75),
];
