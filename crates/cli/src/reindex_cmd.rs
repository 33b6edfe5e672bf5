//! `tsunagu reindex`: rebuilds every search index from the stored resources, resumably.

use indicatif::{ProgressBar, ProgressStyle};

pub fn run(cfg: &crate::config::Config, restart: bool, batch: usize) -> Result<(), String> {
    let fhir = crate::open(cfg, false)?;
    if restart {
        fhir.reindex_restart().map_err(|e| e.to_string())?;
    }
    let start = std::time::Instant::now();
    let first = fhir.reindex_step(batch).map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(first.done as u64 + first.remaining);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} resources ({per_sec})")
            .expect("valid template"),
    );
    bar.inc(first.done as u64);
    let mut total = first.done;
    let mut step = first;
    while step.remaining > 0 {
        step = fhir.reindex_step(batch).map_err(|e| e.to_string())?;
        total += step.done;
        bar.inc(step.done as u64);
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    println!("reindexed {total} resources in {secs:.1} s ({:.0} resources/s)", total as f64 / secs.max(1e-9));
    Ok(())
}
