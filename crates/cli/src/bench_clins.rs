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

/// What to load and how.
pub struct Plan {
    pub patients: usize,
    pub seed: u64,
    /// Threads that make and validate submissions (the writer is one more).
    pub threads: usize,
    /// Submissions per write transaction while loading (1 = one each, as over HTTP).
    pub group: usize,
    /// Patients whose documents are loaded as well (documents are large: all of them for
    /// 100,000 patients would need about 20 GB more disk).
    pub documents: usize,
    /// Further patients submitted one transaction each after the load, as requests would be.
    pub sample: usize,
}

pub fn run(cfg: &crate::config::Config, plan: Plan) -> Result<(), String> {
    if cfg.packages.is_empty() {
        return Err("bench clins validates every submission: configure the core, JP Core and JP-CLINS packages \
                    (packages = [...] in tsunagu.toml)"
            .into());
    }
    let seed = plan.seed;
    let synth_n = plan.patients.clamp(1, 2000);
    let start = Instant::now();
    let generated: usize = (0..synth_n).map(|i| tsunagu_synth::patient_bundles(seed, i).len()).sum();
    let secs = start.elapsed().as_secs_f64();
    println!("synth: {:.0} patients/s on one thread ({synth_n} patients, {generated} Bundles)", synth_n as f64 / secs);

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut bench_cfg = cfg.clone();
    bench_cfg.data = dir.path().join("data");
    let (fhir, _) = crate::open_with_validator(&bench_cfg, true)?;
    let info = &[BundleKind::Information][..];
    let docs = &[BundleKind::Referral, BundleKind::DischargeSummary, BundleKind::Checkup][..];
    println!("loading {} patients, {} submissions per transaction:", plan.patients, plan.group);
    submit_all(&fhir, 0..plan.patients, seed, plan.threads, plan.group, info);
    submit_all(&fhir, 0..plan.documents.min(plan.patients), seed, plan.threads, plan.group, docs);
    if plan.sample > 0 {
        let more = plan.patients..plan.patients + plan.sample;
        println!("then {} more patients, one transaction per submission (as each HTTP request is):", plan.sample);
        submit_all(&fhir, more.clone(), seed, plan.threads, 1, info);
        submit_all(&fhir, more, seed, plan.threads, 1, docs);
    }
    summaries(&fhir, plan.patients, seed);
    drop(fhir);
    let bytes = crate::import::input_size(&bench_cfg.data);
    println!("data directory: {:.1} GiB", bytes as f64 / (1u64 << 30) as f64);
    Ok(())
}

/// Tally of one Bundle kind.
#[derive(Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    resources: usize,
}

/// Submits every Bundle of `kinds` of the patients in `range`: `threads` threads make and
/// validate them (each patient's Bundles about a millisecond), the calling thread commits
/// them `group` at a time.
fn submit_all(
    fhir: &Arc<Interactions>,
    range: std::ops::Range<usize>,
    seed: u64,
    threads: usize,
    group: usize,
    kinds: &[BundleKind],
) {
    type Prepared = Result<tsunagu_interaction::clins::PreparedSubmission, tsunagu_interaction::InteractionError>;
    let next = AtomicUsize::new(range.start);
    let mut tally: Vec<Tally> = kinds.iter().map(|_| Tally::default()).collect();
    let mut refusals = Vec::<String>::new();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, usize, Prepared)>(group.max(1) * 2);
    let mut note = |k: usize, n: usize, r: Result<(), &tsunagu_interaction::InteractionError>| match r {
        Ok(()) => {
            tally[k].accepted += 1;
            tally[k].resources += n;
        }
        Err(e) => {
            tally[k].refused += 1;
            let first = format!("{}: ", kinds[k].file_stem());
            if !refusals.iter().any(|r| r.starts_with(&first)) {
                refusals.push(format!("{first}{}", refusal(e)));
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= range.end {
                    return;
                }
                for b in tsunagu_synth::patient_bundles(seed, i) {
                    let Some(k) = kinds.iter().position(|k| *k == b.kind) else { continue };
                    let n = b.bundle["entry"].as_array().map_or(0, Vec::len);
                    if tx.send((k, n, fhir.prepare_submission(b.bundle))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let ctx = RequestContext::new("");
        let mut batch = Vec::new();
        for (k, n, prepared) in rx {
            match prepared {
                Ok(p) => batch.push((k, n, p)),
                Err(e) => note(k, n, Err(&e)),
            }
            if batch.len() >= group.max(1) {
                commit(fhir, &mut batch, &ctx, &mut note);
            }
        }
        commit(fhir, &mut batch, &ctx, &mut note);
    });
    let secs = start.elapsed().as_secs_f64();
    let (mut ok, mut resources) = (0, 0);
    for (kind, t) in kinds.iter().zip(&tally) {
        println!("  {}: {} accepted, {} refused, {} resources", kind.file_stem(), t.accepted, t.refused, t.resources);
        ok += t.accepted;
        resources += t.resources;
    }
    println!(
        "submitted {}: {:.0} Bundles/s, {:.0} resources/s ({threads} threads, {} patients, {secs:.1} s, validation on, {group} per transaction)",
        kinds.iter().map(|k| k.file_stem()).collect::<Vec<_>>().join(" + "),
        ok as f64 / secs,
        resources as f64 / secs,
        range.len(),
    );
    for r in refusals {
        println!("  first refusal: {r}");
    }
}

type Waiting = Vec<(usize, usize, tsunagu_interaction::clins::PreparedSubmission)>;
/// Tallies one submission: its kind, its resources, and whether it was stored.
type Note<'n> = dyn FnMut(usize, usize, Result<(), &tsunagu_interaction::InteractionError>) + 'n;

/// Commits the waiting submissions as one group and tallies each.
fn commit(fhir: &Interactions, batch: &mut Waiting, ctx: &RequestContext, note: &mut Note<'_>) {
    let (meta, prepared): (Vec<(usize, usize)>, Vec<_>) =
        std::mem::take(batch).into_iter().map(|(k, n, p)| ((k, n), p)).unzip();
    for ((k, n), r) in meta.into_iter().zip(fhir.commit_submissions(prepared, ctx)) {
        note(k, n, r.as_ref().map(|_| ()));
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
