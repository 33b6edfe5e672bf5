//! JP Core, JP-CLINS and eCheckupReport load completely, with their dependencies, and
//! every StructureDefinition in them compiles into a profile.

use crate::support;

use tsunagu_package::PackageError;
use tsunagu_validation::ConformanceKind;

#[test]
fn jp_packages_load_with_dependencies() {
    let Some(set) = support::load_packages() else { return };
    for p in set.packages() {
        println!("{}#{}: {:?}", p.name, p.version, p.counts);
    }
    set.check_dependencies().expect("all dependencies loaded");
    let missing = set.missing_base_definitions();
    for (url, base) in &missing {
        println!("missing base: {url} → {base}");
    }
    assert!(missing.is_empty());
    let jp = |name: &str| set.packages().iter().find(|p| p.name == name).unwrap();
    let sds = |name: &str| jp(name).counts[&ConformanceKind::StructureDefinition];
    assert_eq!(sds("jp-core.r4"), 89);
    assert_eq!(sds("jp-eCSCLINS.r4"), 49);
    assert_eq!(sds("jp-eCheckupReport.r4"), 26);
}

#[test]
fn missing_dependency_is_named() {
    let Some(path) = tsunagu_reference::find("jp/jp-clins.r4-1.5.2-snap.tgz") else { return };
    let mut set = tsunagu_validation::PackageSet::new();
    set.load_tgz(&path).unwrap();
    match set.check_dependencies() {
        Err(PackageError::MissingDependencies(m)) => {
            assert_eq!(m, vec!["jp-eCSCLINS.r4#1.x.x-temp → hl7.fhir.r4.core#4.0.1"]);
        }
        other => panic!("expected a missing dependency, got {other:?}"),
    }
}

#[test]
fn every_jp_structure_definition_compiles() {
    let Some(v) = support::validator() else { return };
    let mut total = 0;
    let mut uncompiled = 0;
    for package in ["jp-core.r4", "jp-eCSCLINS.r4", "jp-eCheckupReport.r4"] {
        for sd in v.packages().from_package(package, ConformanceKind::StructureDefinition) {
            let url = sd["url"].as_str().unwrap();
            total += 1;
            // A canonical defined twice resolves to one definition; both must compile.
            let notes = v.uncompiled_constraints(url).unwrap_or_else(|| panic!("{url} does not compile"));
            for n in &notes {
                println!("{url}: constraint not compiled: {n}");
            }
            uncompiled += notes.len();
        }
    }
    println!("JP StructureDefinitions compiled: {total}; constraints not compiled: {uncompiled}");
    let mut core = 0;
    let mut core_uncompiled = Vec::new();
    for sd in v.packages().from_package("hl7.fhir.r4.core", ConformanceKind::StructureDefinition) {
        let url = sd["url"].as_str().unwrap();
        if let Some(notes) = v.uncompiled_constraints(url) {
            core += 1;
            core_uncompiled.extend(notes.into_iter().map(|n| format!("{url}: {n}")));
        }
    }
    core_uncompiled.sort();
    core_uncompiled.dedup();
    println!("core StructureDefinitions compiled: {core}; constraints not compiled: {}", core_uncompiled.len());
    for n in &core_uncompiled {
        println!("    {n}");
    }
    assert_eq!(total, 89 + 49 + 26);
}
