//! The R4 examples package, as the search crate's tests read it.

use serde_json::Value;
use std::io::Read;

/// Calls `f` with the file name, type and content of each JSON resource in the R4 examples;
/// `false` when the package is not there (`tsunagu_reference::find` fails instead under
/// `CI=true`).
pub fn each_r4_example(mut f: impl FnMut(&str, &str, Value)) -> bool {
    let Some(path) = tsunagu_reference::find("fhir/hl7.fhir.r4.examples-4.0.1.tgz") else { return false };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.contains(".index") || name.ends_with("package.json") {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        let Ok(resource) = serde_json::from_str::<Value>(&text) else { continue };
        let Some(ty) = resource.get("resourceType").and_then(Value::as_str).map(str::to_string) else { continue };
        f(&name, &ty, resource);
    }
    true
}
