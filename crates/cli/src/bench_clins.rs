//! `tsunagu bench clins`: the JP-CLINS paths on synthetic data in a throwaway data
//! directory — synthetic patients per second, information Bundles and documents
//! submitted per second with validation (always on for submissions), and `$summary`
//! latency (p50/p95) with everything loaded. Needs the core, JP Core and JP-CLINS packages
//! in the configuration (`packages = […]`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tsunagu_interaction::clins::summary::SummaryOf;
use tsunagu_interaction::{Interactions, RequestContext};
use tsunagu_synth::BundleKind;

pub fn run(cfg: &crate::config::Config, patients: usize, seed: u64, threads: usize) -> Result<(), String> {
    if cfg.packages.is_empty() {
        return Err("bench clins validates every submission: configure the core, JP Core and JP-CLINS packages \
                    (packages = [...] in tsunagu.toml)"
            .into());
    }
    let start = Instant::now();
    let generated: usize = (0..patients.min(2000)).map(|i| tsunagu_synth::patient_bundles(seed, i).len()).sum();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "synth: {:.0} patients/s on one thread ({} patients, {generated} Bundles)",
        patients.min(2000) as f64 / secs,
        patients.min(2000)
    );

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut bench_cfg = cfg.clone();
    bench_cfg.data = dir.path().join("data");
    let (fhir, _) = crate::open_with_validator(&bench_cfg, true)?;
    for kinds in
        [&[BundleKind::Information][..], &[BundleKind::Referral, BundleKind::DischargeSummary, BundleKind::Checkup]]
    {
        submit_all(&fhir, patients, seed, threads, kinds);
    }
    summaries(&fhir, patients, seed);
    Ok(())
}

/// Submits every Bundle of `kinds` of every patient from `threads` threads (each makes
/// its patients' Bundles itself, about a millisecond per patient).
fn submit_all(fhir: &Arc<Interactions>, patients: usize, seed: u64, threads: usize, kinds: &[BundleKind]) {
    let next = AtomicUsize::new(0);
    let per_kind: Vec<(AtomicUsize, AtomicUsize, AtomicUsize)> =
        kinds.iter().map(|_| (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0))).collect();
    let first_refusal = parking_lot::Mutex::new(Vec::<String>::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let ctx = RequestContext::new("");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= patients {
                        return;
                    }
                    for b in tsunagu_synth::patient_bundles(seed, i) {
                        let Some(k) = kinds.iter().position(|k| *k == b.kind) else { continue };
                        let resources = b.bundle["entry"].as_array().map_or(0, Vec::len);
                        let outcome = fhir.prepare_submission(b.bundle).and_then(|p| fhir.commit_submission(p, &ctx));
                        match outcome {
                            Ok(_) => {
                                per_kind[k].0.fetch_add(1, Ordering::Relaxed);
                                per_kind[k].2.fetch_add(resources, Ordering::Relaxed);
                            }
                            Err(e) => {
                                per_kind[k].1.fetch_add(1, Ordering::Relaxed);
                                let mut seen = first_refusal.lock();
                                if seen.len() < kinds.len() {
                                    seen.push(format!("{}: {}", b.kind.file_stem(), refusal(&e)));
                                }
                            }
                        }
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let (mut ok, mut resources) = (0, 0);
    for (kind, (accepted, refused, n)) in kinds.iter().zip(&per_kind) {
        let (accepted, refused, n) =
            (accepted.load(Ordering::Relaxed), refused.load(Ordering::Relaxed), n.load(Ordering::Relaxed));
        println!("  {}: {accepted} accepted, {refused} refused, {n} resources", kind.file_stem());
        ok += accepted;
        resources += n;
    }
    println!(
        "submitted {}: {:.0} Bundles/s, {:.0} resources/s ({threads} threads, {patients} patients, {secs:.1} s, validation on)",
        kinds.iter().map(|k| k.file_stem()).collect::<Vec<_>>().join(" + "),
        ok as f64 / secs,
        resources as f64 / secs
    );
    for r in first_refusal.into_inner() {
        println!("  first refusal: {r}");
    }
}

fn refusal(e: &tsunagu_interaction::InteractionError) -> String {
    match e {
        tsunagu_interaction::InteractionError::Invalid { issues, .. } => issues
            .iter()
            .filter(|i| i.severity == "error")
            .map(|i| format!("{} {}", i.expression.as_deref().unwrap_or(""), i.en))
            .collect::<Vec<_>>()
            .join("; "),
        e => e.message(Default::default()),
    }
}

/// `$summary` by insurance identifier for up to 500 of the patients.
fn summaries(fhir: &Interactions, patients: usize, seed: u64) {
    let ctx = RequestContext::new("http://localhost");
    let step = (patients / 500).max(1);
    let mut times = Vec::new();
    let mut entries = 0usize;
    for i in (0..patients).step_by(step) {
        let bundles = tsunagu_synth::patient_bundles(seed, i);
        let Some(member) = bundles.iter().find_map(|b| insurance_of(&b.bundle)) else { continue };
        let start = Instant::now();
        match fhir.patient_summary(SummaryOf::Identifier(&member), &ctx) {
            Ok(doc) => entries += doc["entry"].as_array().map_or(0, Vec::len),
            Err(e) => println!("  $summary {member}: {}", e.message(Default::default())),
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times.get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1))).copied();
    println!(
        "$summary: {} persons, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, {:.1} entries each",
        times.len(),
        at(0.5).unwrap_or(0.0),
        at(0.95).unwrap_or(0.0),
        times.last().copied().unwrap_or(0.0),
        entries as f64 / times.len().max(1) as f64
    );
}

fn insurance_of(bundle: &Value) -> Option<String> {
    bundle["entry"].as_array()?.iter().find_map(|e| {
        let ids = e["resource"]["identifier"].as_array()?;
        let system = tsunagu_interaction::clins::sharing::INSURANCE_SYSTEM;
        let value = ids.iter().find(|id| id["system"] == system)?["value"].as_str()?;
        Some(format!("{system}|{value}"))
    })
}
