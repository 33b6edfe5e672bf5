//! `tsunagu terminology load --format medis|jlac10|hot|yj FILE [--version V]`: reads a
//! Japanese standard master (Shift_JIS or UTF-8) and stores it as a CodeSystem (and, for
//! the MEDIS disease master, a ConceptMap to ICD-10), so the terminology operations, the
//! validator's bindings and token `:below`/`:in` searches see it after the next start.
//! A running server sees it at once when the same resources are PUT over REST instead.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde_json::Value;
use tsunagu_terminology::{load_master, MasterFormat};

#[derive(Subcommand)]
pub enum TerminologyAction {
    Load {
        #[arg(long, value_enum)]
        format: Format,
        file: PathBuf,
        /// The master's release (e.g. `20241001`), recorded as the CodeSystem's version.
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Medis,
    Jlac10,
    Hot,
    Yj,
}

pub fn run(cfg: &crate::config::Config, action: TerminologyAction) -> Result<(), String> {
    let TerminologyAction::Load { format, file, version } = action;
    let master = match format {
        Format::Medis => MasterFormat::MedisDisease,
        Format::Jlac10 => MasterFormat::Jlac10,
        Format::Hot => MasterFormat::Hot,
        Format::Yj => MasterFormat::Yj,
    };
    let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let loaded = load_master(master, &bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let fhir = crate::open(cfg, true)?;
    let mut stored = Vec::new();
    for mut resource in std::iter::once(loaded.code_system).chain(loaded.concept_map) {
        if let Some(v) = &version {
            resource["version"] = Value::String(v.clone());
        }
        let ty = resource["resourceType"].as_str().unwrap_or("CodeSystem").to_string();
        // A stable id from the canonical URL, so a newer release replaces the older one.
        let id = crate::package_cmd::canonical_id(&resource);
        resource["id"] = Value::String(id.clone());
        fhir.update(
            &ty,
            &id,
            resource,
            None,
            &tsunagu_interaction::RequestContext::for_caller(
                "",
                tsunagu_interaction::Caller::operator("terminology-load"),
            ),
        )
        .map_err(|e| format!("{ty}/{id}: {}", e.message(Default::default())))?;
        stored.push(format!("{ty}/{id}"));
    }
    println!("{} concepts from {}: stored {}", loaded.count, file.display(), stored.join(", "));
    Ok(())
}
