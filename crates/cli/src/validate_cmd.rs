//! `tsunagu validate FILE… [--profile URL]… [--package FILE.tgz]…`: validates resources
//! (JSON or XML) against the base specification, the profiles they declare and the
//! profiles named; prints one OperationOutcome per file as JSON; exit 1 on any error.

use std::path::PathBuf;
use std::sync::Arc;

pub fn run(
    cfg: &crate::config::Config,
    files: &[PathBuf],
    profiles: &[String],
    packages: &[PathBuf],
) -> Result<(), String> {
    let extra: Vec<PathBuf> = cfg.packages.iter().chain(packages).cloned().collect();
    let validator = Arc::new(crate::validator(cfg, crate::package_cmd::load_packages(cfg, &extra)?, None));
    let profiles: Vec<&str> = profiles.iter().map(String::as_str).collect();
    let mut errors = 0;
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let resource: serde_json::Value = if text.trim_start().starts_with('<') {
            tsunagu_format::xml_to_json(&text).map_err(|e| format!("{}: {e}", f.display()))?
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", f.display()))?
        };
        let issues = tsunagu_server::content_issues(validator.validate(&resource, &profiles));
        errors += issues.iter().filter(|i| i.severity == "error").count();
        let oo = tsunagu_interaction::validation_outcome(&issues, Default::default());
        if files.len() > 1 {
            eprintln!("== {}", f.display());
        }
        println!("{}", serde_json::to_string_pretty(&oo).expect("JSON serialises"));
    }
    if errors == 0 {
        Ok(())
    } else {
        Err(format!("{errors} error(s)"))
    }
}
