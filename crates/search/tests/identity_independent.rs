//! Index extraction does not depend on a resource's id, `meta.versionId` or
//! `meta.lastUpdated` (`_id` and `_lastUpdated` are answered from the version row). Writes
//! rely on it: they extract before the write lock is taken, before the server sets those.

use serde_json::{json, Value};
mod examples;

#[test]
fn extraction_ignores_id_and_version_meta() {
    let registry = tsunagu_search::SearchRegistry::new();
    let mut checked = 0;
    let found = examples::each_r4_example(|name, ty, resource| {
        let Value::Object(mut bare) = resource else { return };
        bare.remove("id");
        if let Some(meta) = bare.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("versionId");
            meta.remove("lastUpdated");
        }
        let mut stored = bare.clone();
        stored.insert("id".into(), json!("0192f0e6-7c1a-7b4e-9d2a-1f3c5e7a9b0d"));
        let meta = stored.entry("meta").or_insert_with(|| json!({}));
        meta["versionId"] = json!("7");
        meta["lastUpdated"] = json!("2026-12-02T15:23:37.123Z");
        let before = registry.index_entries(ty, &Value::Object(bare));
        let after = registry.index_entries(ty, &Value::Object(stored));
        assert_eq!(before, after, "{name}: index entries depend on id or version meta");
        checked += 1;
    });
    if !found {
        return;
    }
    assert!(checked > 5000, "only {checked} examples read");
    println!("identity-independent extraction: {checked} examples");
}
