//! Fuzzes the FHIRPath compiler and evaluator: any text must either fail with an error or
//! compile, print and re-parse to the same text, and evaluate without panicking.
//! Run: `cargo +nightly fuzz run fhirpath` (from the workspace root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn resource() -> &'static serde_json::Value {
    static R: OnceLock<serde_json::Value> = OnceLock::new();
    R.get_or_init(|| {
        serde_json::from_str(
            r#"{"resourceType": "Patient", "id": "f", "active": true, "birthDate": "1970-01-01",
                "_birthDate": {"extension": [{"url": "http://x", "valueDecimal": 1.50}]},
                "name": [{"use": "official", "family": "Doe", "given": ["A", null], "_given": [null, {"id": "g"}]}],
                "contained": [{"resourceType": "Observation", "id": "o", "status": "final",
                  "valueQuantity": {"value": 185, "code": "[lb_av]", "system": "http://unitsofmeasure.org"}}]}"#,
        )
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(ast) = tsunagu_fhirpath::parse(text) {
        let printed = ast.to_string();
        let again = tsunagu_fhirpath::parse(&printed).expect("printed expression must parse");
        assert_eq!(again.to_string(), printed);
    }
    for root in [None, Some("Patient")] {
        let compiled = match root {
            Some(r) => tsunagu_fhirpath::compile_for(r, text),
            None => tsunagu_fhirpath::compile(text),
        };
        if let Ok(e) = compiled {
            let _ = e.evaluate(resource());
        }
    }
});
