//! The same seed gives the same bytes; another seed gives others; identifiers are unique;
//! a person's insurance identifier is the same at every institution.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tsunagu_synth::{patient_bundles, write_dir, BundleKind, SynthOptions};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tsunagu-synth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read_all(dir: &Path) -> Vec<(String, Vec<u8>)> {
    BundleKind::ALL
        .iter()
        .map(|k| {
            let name = format!("{}.ndjson", k.file_stem());
            let bytes = std::fs::read(dir.join(&name)).expect("file written");
            (name, bytes)
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    // More than one chunk per thread, so that the order of threads is exercised.
    let opts = SynthOptions { patients: 700, seed: 7 };
    let (a, b, c) = (scratch("a"), scratch("b"), scratch("c"));
    let stats = write_dir(&opts, &a).unwrap();
    write_dir(&opts, &b).unwrap();
    write_dir(&SynthOptions { seed: 8, ..opts }, &c).unwrap();
    let (fa, fb, fc) = (read_all(&a), read_all(&b), read_all(&c));
    assert_eq!(fa, fb);
    for ((name, x), (_, y)) in fa.iter().zip(&fc) {
        assert_ne!(x, y, "{name} differs between seeds");
    }
    assert_eq!(stats.patients, 700);
    for ((kind, count), (name, bytes)) in stats.bundles_per_kind.iter().zip(&fa) {
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        assert_eq!(*count, lines, "{kind:?} count matches {name}");
        assert!(lines > 0, "{name} is not empty");
    }
    // Patients appear in index order: the first line of each file is patient 0's.
    let first: Value = serde_json::from_slice(fa[0].1.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first, patient_bundles(7, 0)[0].bundle);
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn patient_bundles_depend_only_on_seed_and_index() {
    assert_eq!(patient_bundles(3, 41), patient_bundles(3, 41));
    assert_ne!(patient_bundles(3, 41), patient_bundles(3, 42));
    assert_ne!(patient_bundles(3, 41), patient_bundles(4, 41));
}

fn patients(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == "Patient")
}

fn identifier(resource: &Value, system: &str) -> Option<String> {
    resource["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"] == system)
        .map(|i| i["value"].as_str().unwrap().to_owned())
}

#[test]
fn bundle_identifiers_unique_and_well_formed() {
    let pattern_ok = |v: &str| {
        let parts: Vec<&str> = v.split('^').collect();
        parts.len() == 3
            && parts[0].len() == 10
            && parts[0].bytes().all(|b| b.is_ascii_digit())
            && (b'0'..=b'4').contains(&parts[0].as_bytes()[0])
            && (b'1'..=b'3').contains(&parts[0].as_bytes()[2])
            && parts[1].len() == 4
            && parts[1].starts_with("20")
            && (b'2'..=b'3').contains(&parts[1].as_bytes()[2])
            && (1..=36).contains(&parts[2].len())
            && parts[2].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let mut ids = HashSet::new();
    for seed in [1, 2] {
        for index in 0..300 {
            for b in patient_bundles(seed, index) {
                let id = b.bundle["identifier"]["value"].as_str().unwrap().to_owned();
                assert!(pattern_ok(&id), "{id}");
                assert!(ids.insert(id.clone()), "duplicate Bundle identifier {id}");
                // Within a Bundle every entry has its own URL (one institution's information
                // Bundles share their Patient's, as one record).
                let mut urls = HashSet::new();
                for e in b.bundle["entry"].as_array().unwrap() {
                    let url = e["fullUrl"].as_str().unwrap().to_owned();
                    assert!(urls.insert(url.clone()), "duplicate fullUrl {url} in {id}");
                }
            }
        }
    }
}

#[test]
fn one_insurance_identifier_per_person_across_institutions() {
    const INSURANCE: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
    let mut people = HashSet::new();
    for index in 0..200 {
        let bundles = patient_bundles(99, index);
        let mut insurance = BTreeSet::new();
        let mut institutions = BTreeSet::new();
        for b in &bundles {
            for p in patients(&b.bundle) {
                insurance.insert(identifier(p, INSURANCE).expect("insurance identifier"));
                let local = p["identifier"][0]["system"].as_str().unwrap();
                assert!(local.starts_with("urn:oid:1.2.392.100495.20.3.51.1"), "{local}");
                institutions.insert(local.to_owned());
            }
        }
        assert_eq!(insurance.len(), 1, "patient {index}: {insurance:?}");
        assert!((2..=3).contains(&institutions.len()), "patient {index}: {institutions:?}");
        let member = insurance.into_iter().next().unwrap();
        let fields: Vec<&str> = member.split(':').collect();
        assert_eq!(fields.len(), 4, "{member}");
        assert!(fields[0].len() == 8 && fields[0].bytes().all(|b| b.is_ascii_digit()), "{member}");
        assert!(fields[2].chars().all(|c| ('０'..='９').contains(&c)), "番号 in full-width digits: {member}");
        people.insert(member);
    }
    assert!(people.len() > 190, "insurance identifiers mostly distinct: {}", people.len());
}
