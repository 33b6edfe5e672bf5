//! Project automation. `cargo xtask gen-model` regenerates the compact model tables in
//! `crates/model/src/generated/` from the FHIR R4 core package in `$TSUNAGU_SHARED`
//! (default `../shared`). The output is committed so that building never needs ../shared.
//!
//! Only structural facts leave the package: element paths, types, cardinalities, bindings,
//! search-parameter expressions and compartments. No prose is copied.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen-model") => gen_model(),
        _ => {
            eprintln!("usage: cargo xtask gen-model");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Reads every JSON file of a FHIR package tarball, keyed by file name.
fn read_package(path: &Path) -> BTreeMap<String, Value> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.contains(".index") {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            out.insert(name.rsplit('/').next().unwrap().to_string(), v);
        }
    }
    out
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn gen_model() {
    // A generator never skips: without its input it stops with a message and a failure.
    let core = tsunagu_reference::shared_dir().join("fhir/hl7.fhir.r4.core-4.0.1.tgz");
    if !core.is_file() {
        eprintln!(
            "cargo xtask gen-model: {} not found; set TSUNAGU_SHARED to the reference data \
             (default ../shared beside the workspace)",
            core.display()
        );
        std::process::exit(1);
    }
    let pkg = read_package(&core);
    let out_dir = workspace_root().join("crates/model/src/generated");
    std::fs::create_dir_all(&out_dir).unwrap();

    let by_type = |t: &'static str| pkg.values().filter(move |v| s(v, "resourceType") == t);

    // --- types and elements ---------------------------------------------------------
    let mut types = String::from("# name\tkind\tbase\tabstract\tregex\n");
    let mut elements = String::from("# path\tmin\tmax\ttypes\tflags\tcontentRef\tbinding\n");
    let mut required_vs: BTreeSet<String> = BTreeSet::new();
    let mut sds: Vec<&Value> = by_type("StructureDefinition")
        .filter(|sd| {
            let kind = s(sd, "kind");
            let deriv = s(sd, "derivation");
            let name = s(sd, "name");
            matches!(kind, "primitive-type" | "complex-type" | "resource")
                && (deriv != "constraint" || matches!(name, "SimpleQuantity" | "MoneyQuantity"))
        })
        .collect();
    sds.sort_by_key(|sd| s(sd, "name").to_string());
    for sd in &sds {
        let name = s(sd, "name");
        let kind = match s(sd, "kind") {
            "primitive-type" => "P",
            "complex-type" => "C",
            _ => "R",
        };
        let base = s(sd, "baseDefinition").rsplit('/').next().unwrap_or("");
        let abstract_ = if sd["abstract"].as_bool().unwrap_or(false) { "1" } else { "0" };
        let elems = sd["snapshot"]["element"].as_array().unwrap();
        let mut regex = String::new();
        if kind == "P" {
            if let Some(v) = elems.iter().find(|e| s(e, "path").ends_with(".value")) {
                for t in v["type"].as_array().into_iter().flatten() {
                    for ext in t["extension"].as_array().into_iter().flatten() {
                        if s(ext, "url").ends_with("/regex") {
                            regex = s(ext, "valueString").to_string();
                        }
                    }
                }
            }
        }
        writeln!(types, "{name}\t{kind}\t{base}\t{abstract_}\t{regex}").unwrap();
        if kind == "P" {
            continue; // a primitive's children (id, extension, value) are implied by the format
        }
        let type_name = s(sd, "type");
        for e in elems {
            let path = s(e, "path");
            if !path.contains('.') {
                continue;
            }
            // Constraint types (SimpleQuantity) are written under their own name.
            let path = format!("{name}{}", &path[type_name.len()..]);
            let choice = path.ends_with("[x]");
            let path = path.trim_end_matches("[x]");
            let min = e["min"].as_u64().unwrap_or(0);
            let max = s(e, "max");
            let mut tys = Vec::new();
            for t in e["type"].as_array().into_iter().flatten() {
                let mut code = s(t, "code").to_string();
                if let Some(sys) = code.strip_prefix("http://hl7.org/fhirpath/System.") {
                    let fhir = t["extension"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|x| s(x, "url").ends_with("structuredefinition-fhir-type"))
                        .map(|x| s(x, "valueUrl").to_string());
                    code = match fhir {
                        Some(f) => format!("System.{sys}:{f}"),
                        None => format!("System.{sys}"),
                    };
                }
                let targets: Vec<&str> = t["targetProfile"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str())
                    .map(|p| p.rsplit('/').next().unwrap())
                    .collect();
                let profiles: Vec<&str> = t["profile"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str())
                    .map(|p| p.rsplit('/').next().unwrap())
                    .collect();
                // Quantity profiled as SimpleQuantity/MoneyQuantity is written as that type.
                if code == "Quantity" && profiles.len() == 1 {
                    code = profiles[0].to_string();
                }
                if !targets.is_empty() {
                    code = format!("{code}({})", targets.join("|"));
                }
                tys.push(code);
            }
            let mut flags = String::new();
            if e["isSummary"].as_bool().unwrap_or(false) {
                flags.push('S');
            }
            if e["isModifier"].as_bool().unwrap_or(false) {
                flags.push('M');
            }
            if choice {
                flags.push('x');
            }
            for r in e["representation"].as_array().into_iter().flatten() {
                match r.as_str() {
                    Some("xmlAttr") => flags.push('A'),
                    Some("xhtml") => flags.push('H'),
                    _ => {}
                }
            }
            let content_ref = s(e, "contentReference").trim_start_matches('#');
            let mut binding = String::new();
            if let Some(b) = e.get("binding") {
                let strength = s(b, "strength");
                let vs = s(b, "valueSet");
                if !vs.is_empty() {
                    binding = format!("{strength}|{vs}");
                    if strength == "required" {
                        required_vs.insert(vs.split('|').next().unwrap().to_string());
                    }
                }
            }
            writeln!(elements, "{path}\t{min}\t{max}\t{}\t{flags}\t{content_ref}\t{binding}", tys.join(",")).unwrap();
        }
    }

    // --- required value sets, expanded from the package's own code systems -------------
    let code_systems: HashMap<&str, &Value> = by_type("CodeSystem").map(|cs| (s(cs, "url"), cs)).collect();
    let value_sets: HashMap<&str, &Value> = by_type("ValueSet").map(|vs| (s(vs, "url"), vs)).collect();
    let mut vs_out = String::from("# valueSet\tsystem\tcodes (space separated)\n");
    for url in &required_vs {
        let mut seen = BTreeSet::new();
        let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if expand(url, &value_sets, &code_systems, &mut rows, &mut seen) {
            for (system, codes) in rows {
                writeln!(vs_out, "{url}\t{system}\t{}", codes.join(" ")).unwrap();
            }
        }
    }

    // --- search parameters, one row per (base resource, code) --------------------------
    let mut sp_out = String::from("# resource\tcode\ttype\texpression\ttargets\turl\tcomponents\n");
    let mut params: Vec<&Value> = by_type("SearchParameter").collect();
    params.sort_by_key(|p| s(p, "url").to_string());
    let mut rows = BTreeSet::new();
    for p in params {
        let code = s(p, "code");
        let ty = s(p, "type");
        let expr = s(p, "expression");
        let targets: Vec<&str> = p["target"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let comps: Vec<String> = p["component"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{};{}", s(c, "definition"), s(c, "expression")))
            .collect();
        for base in p["base"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let own = expression_for(expr, base);
            rows.insert(format!(
                "{base}\t{code}\t{ty}\t{own}\t{}\t{}\t{}",
                targets.join(","),
                s(p, "url"),
                comps.join(",")
            ));
        }
    }
    for r in rows {
        sp_out.push_str(&r);
        sp_out.push('\n');
    }

    // --- compartments --------------------------------------------------------------
    let mut comp_out = String::from("# compartment\tresource\tparams\n");
    let mut comps: Vec<&Value> = by_type("CompartmentDefinition").collect();
    comps.sort_by_key(|c| s(c, "code").to_string());
    for c in comps {
        for r in c["resource"].as_array().into_iter().flatten() {
            let ps: Vec<&str> = r["param"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            writeln!(comp_out, "{}\t{}\t{}", s(c, "code"), s(r, "code"), ps.join(",")).unwrap();
        }
    }

    for (file, text) in [
        ("types.tsv", types),
        ("elements.tsv", elements),
        ("valuesets.tsv", vs_out),
        ("searchparams.tsv", sp_out),
        ("compartments.tsv", comp_out),
    ] {
        std::fs::write(out_dir.join(file), text).unwrap();
        println!("wrote crates/model/src/generated/{file}");
    }
}

/// Keeps, from a search expression shared by many resources (`A.x | B.y`), the union terms
/// that apply to `base`, so each resource evaluates only its own paths.
fn expression_for(expr: &str, base: &str) -> String {
    let terms = split_union(expr);
    if terms.len() <= 1 {
        return expr.to_string();
    }
    let prefix = format!("{base}.");
    let paren = format!("({base}.");
    let own: Vec<&str> = terms
        .iter()
        .map(|t| t.trim())
        .filter(|t| t.starts_with(&prefix) || t.starts_with(&paren) || *t == base)
        .collect();
    if own.is_empty() {
        expr.to_string()
    } else {
        own.join(" | ")
    }
}

/// Splits on top-level `|` (not inside parentheses or quotes).
fn split_union(expr: &str) -> Vec<&str> {
    let (mut depth, mut quote, mut start) = (0i32, false, 0usize);
    let mut out = Vec::new();
    for (i, ch) in expr.char_indices() {
        match ch {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            '|' if !quote && depth == 0 => {
                out.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&expr[start..]);
    out
}

/// Expands a value set from the package's code systems; false when it cannot be expanded
/// completely (filters, external systems), in which case the binding is not enforced here.
fn expand(
    url: &str,
    value_sets: &HashMap<&str, &Value>,
    code_systems: &HashMap<&str, &Value>,
    rows: &mut BTreeMap<String, Vec<String>>,
    seen: &mut BTreeSet<String>,
) -> bool {
    if !seen.insert(url.to_string()) {
        return true;
    }
    let Some(vs) = value_sets.get(url) else {
        return false;
    };
    let Some(includes) = vs["compose"]["include"].as_array() else {
        return false;
    };
    if vs["compose"]["exclude"].is_array() {
        return false;
    }
    for inc in includes {
        if inc.get("filter").is_some() {
            return false;
        }
        for nested in inc["valueSet"].as_array().into_iter().flatten() {
            if !expand(nested.as_str().unwrap_or(""), value_sets, code_systems, rows, seen) {
                return false;
            }
        }
        let system = s(inc, "system");
        if system.is_empty() {
            continue;
        }
        let codes = rows.entry(system.to_string()).or_default();
        if let Some(concepts) = inc["concept"].as_array() {
            codes.extend(concepts.iter().map(|c| s(c, "code").to_string()));
        } else {
            let Some(cs) = code_systems.get(system) else {
                return false;
            };
            if s(cs, "content") != "complete" {
                return false;
            }
            collect_concepts(&cs["concept"], codes);
        }
    }
    true
}

fn collect_concepts(concepts: &Value, out: &mut Vec<String>) {
    for c in concepts.as_array().into_iter().flatten() {
        out.push(s(c, "code").to_string());
        collect_concepts(&c["concept"], out);
    }
}
