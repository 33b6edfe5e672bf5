//! Packages as published differential-only: the same .tgz with every StructureDefinition's
//! snapshot removed, repacked in memory.

use std::io::Read;
use std::path::Path;

use serde_json::Value;
use tsunagu_validation::PackageSet;

/// The package at `path` with the snapshots of its StructureDefinitions removed.
pub fn without_snapshots(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).expect("package file");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for entry in archive.entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        if name.ends_with(".json") {
            if let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) {
                if v.get("resourceType").and_then(Value::as_str) == Some("StructureDefinition") {
                    if let Some(obj) = v.as_object_mut() {
                        obj.remove("snapshot");
                    }
                    bytes = serde_json::to_vec(&v).expect("json");
                }
            }
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        out.append_data(&mut header, &name, bytes.as_slice()).expect("append");
    }
    out.into_inner().expect("tar").finish().expect("gzip")
}

/// [`super::PACKAGES`] with the snapshots stripped from every package but the R4 core.
pub fn load_stripped_packages() -> Option<PackageSet> {
    let mut set = PackageSet::new();
    for p in super::PACKAGES {
        let path = tsunagu_reference::find(p)?;
        if p.starts_with("fhir/") {
            set.load_tgz(&path).expect("package loads");
        } else {
            let bytes = without_snapshots(&path);
            set.load_tgz_reader(bytes.as_slice(), p).expect("stripped package loads");
        }
    }
    Some(set)
}
