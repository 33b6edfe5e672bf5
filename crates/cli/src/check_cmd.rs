//! `tsunagu check`: finds damage in a data directory (versions no reader can parse, bodies
//! that disagree with their rows or fail the base-structure check, index rows that differ
//! from a fresh extraction, SQLite's and the store's own checks) and reports it. Read-only:
//! it works on a snapshot, so it may run beside a live server.

use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use tsunagu_interaction::{check_data, CheckOptions, CheckStage, ProblemKind};
use tsunagu_validation::ConformanceKind;

/// Checks `cfg.data`; `Ok(true)` when nothing is wrong. `content` runs the base-structure
/// check on every version; at most `max_problems` problems are printed (all are counted).
pub fn run(
    cfg: &crate::config::Config,
    content: bool,
    max_problems: usize,
    scratch: Option<&Path>,
) -> Result<bool, String> {
    let start = std::time::Instant::now();
    // On PostgreSQL: every version read back and checked through the store (the SQLite file
    // checks and the index-row comparison are SQLite's own).
    let store = match &cfg.database {
        Some(_) => Some(crate::open_store(cfg)?),
        None => None,
    };
    let place = match &cfg.database {
        Some(d) => crate::config::redacted(&d.url),
        None => cfg.data.display().to_string(),
    };
    // The data directory must exist: a check never creates one.
    let total = match &store {
        Some(s) => s.pinned().and_then(|v| v.count_versions_upto(v.high_seq())),
        None => tsunagu_store::Snapshot::open(&cfg.data).and_then(|s| s.count_versions_upto(s.high_seq())),
    }
    .map_err(|e| format!("cannot open {place}: {e}"))?;
    // The index is compared with what the server extracts: built-in parameters and those
    // of the installed and configured packages (as `crate::open_with_validator` adds them).
    let packages = crate::package_cmd::load_packages(cfg, &cfg.packages)?;
    let search_parameters: Vec<&serde_json::Value> = packages
        .all(ConformanceKind::SearchParameter)
        .map(|sp| sp.as_ref())
        .filter(|sp| {
            !sp.get("url").and_then(serde_json::Value::as_str).is_some_and(|u| u.starts_with("http://hl7.org/fhir/"))
        })
        .collect();
    let structure = tsunagu_server::StructureCheck { max_issues: cfg.limits.max_issues };

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} versions ({per_sec}) {msg}")
            .expect("valid template"),
    );
    let progress = |stage: CheckStage| match stage {
        CheckStage::Integrity => bar.set_message("integrity check"),
        CheckStage::Versions(n) => {
            bar.set_message("");
            bar.set_position(n)
        }
        CheckStage::Index => bar.set_message("comparing index rows"),
    };
    let options = CheckOptions {
        search_parameters,
        content: content.then_some(&structure as &dyn tsunagu_interaction::ResourceCheck),
        max_problems,
        max_index_rows: 10,
        scratch: scratch.map(Path::to_path_buf),
        progress: Some(&progress),
        ..Default::default()
    };
    let report = match &store {
        Some(s) => tsunagu_interaction::check_store(s.as_ref(), &options),
        None => check_data(&cfg.data, &options),
    }
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();

    for p in report.problems.iter().take(max_problems) {
        println!("{p}");
    }
    let listed = report.problems.len().min(max_problems) as u64;
    if report.total() > listed {
        println!("… {} more problem(s) not listed (--max-problems)", report.total() - listed);
    }
    for t in report.index_tables.iter().filter(|t| t.differs()) {
        println!(
            "{}: {} stored row(s) that a fresh extraction does not give, {} it gives that are missing \
             ({} rows stored, {} extracted)",
            t.table, t.only_stored, t.only_extracted, t.rows_stored, t.rows_extracted
        );
    }
    println!(
        "{} versions read, {} current resources, {} index rows compared ({} from a fresh extraction){}, {:.1} s",
        report.versions_read,
        report.current_resources,
        report.index_rows_stored,
        report.index_rows_expected,
        if content { ", base structure checked" } else { "" },
        start.elapsed().as_secs_f64()
    );
    if report.is_clean() {
        println!("no problems found in {place}");
    } else {
        let kinds: Vec<String> = ProblemKind::ALL
            .iter()
            .filter_map(|k| report.found.get(k).filter(|n| **n > 0).map(|n| format!("{n} {k}")))
            .collect();
        println!("{} problem(s) found in {place}: {}", report.total(), kinds.join(", "));
    }
    Ok(report.is_clean())
}
