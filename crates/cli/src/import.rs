//! `tsunagu import`: a three-stage pipeline. One thread reads inputs (files, directories,
//! .tar.zst archives), worker threads parse and stage them (JSON parsing, structure check,
//! ids, reference rewriting — the CPU-heavy part), and the calling thread writes staged
//! resources in large transactions through the single writer.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tsunagu_interaction::{Interactions, RequestContext, ReturnPreference, Staged};

/// One unit of work: a whole JSON document, or a chunk of NDJSON lines.
pub(crate) struct Input {
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    ndjson: bool,
    /// Input bytes this unit accounts for, for the progress bar.
    weight: u64,
}

enum Outcome {
    Staged(String, Vec<Staged>),
    /// A Bundle that must run as a real transaction (conditional entries).
    Transaction(String, Value),
    /// A JP-CLINS submission, validated and split by the staging thread.
    Submission(String, Box<tsunagu_interaction::clins::PreparedSubmission>, usize),
    Failed(String, String),
}

/// Rows per write transaction: large enough to amortise the commit, small enough to keep
/// memory bounded whatever the input size.
const ROWS_PER_COMMIT: usize = 5_000;
/// Staged inputs waiting for the writer (a Synthea patient is ~300 resources): about one
/// commit's worth. Measured on the Synthea import: 4 → 24 gave +13% resources/s for +35 MiB.
const STAGED_QUEUE: usize = 24;
const NDJSON_LINES_PER_UNIT: usize = 500;
/// JP-CLINS submissions per group commit (each a few to a few dozen resources).
const SUBMISSIONS_PER_COMMIT: usize = 64;

pub fn run(cfg: &crate::config::Config, paths: &[PathBuf], check: bool) -> Result<(), String> {
    let start = Instant::now();
    let fhir = crate::open(cfg, check)?;
    // PostgreSQL, empty database: the lookup indexes are built once the rows are in, in one
    // sorted pass each, instead of row by row (tsunagu_store_postgres::DeferredIndexes).
    // From here on nothing returns before they are built, whatever the import's outcome.
    let deferred = match &cfg.database {
        Some(db) => tsunagu_store_postgres::PostgresStore::open(&crate::postgres_config(cfg, db))
            .and_then(|s| s.defer_indexes())
            .map_err(|e| e.to_string())?,
        None => None,
    };
    let total: u64 = paths.iter().map(|p| input_size(p)).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
            .expect("valid template"),
    );
    // Bounded queues keep memory bounded: parsed JSON is several times its text size. The
    // staged queue holds about one commit's worth, so the workers keep staging while the
    // writer commits (with 4 they stalled behind every commit and both sat idle by turns).
    let (input_tx, input_rx) = sync_channel::<Input>(4);
    let (out_tx, out_rx) = sync_channel::<Outcome>(STAGED_QUEUE);
    let paths = paths.to_vec();
    let reader = std::thread::spawn(move || -> Result<(), String> {
        for p in &paths {
            read_path(p, &input_tx)?;
        }
        Ok(())
    });
    let input_rx = Arc::new(Mutex::new(input_rx));
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let rx = input_rx.clone();
        let tx = out_tx.clone();
        let fhir = fhir.clone();
        let bar = bar.clone();
        handles.push(std::thread::spawn(move || stage_worker(&fhir, &rx, &tx, &bar)));
    }
    drop(out_tx);
    let (written, failures) = write_all(&fhir, out_rx, &bar);
    let read_result = reader.join().unwrap_or_else(|_| Err("the reader thread panicked".to_string()));
    for h in handles {
        let _ = h.join();
    }
    bar.finish_and_clear();
    // Closing the store copies the rest of the WAL into the database: part of the load.
    drop(fhir);
    // PostgreSQL plans searches from statistics: refreshed for what was just loaded, after
    // (and, table by table, beside) building the deferred indexes.
    if let Some(db) = &cfg.database {
        let built = Instant::now();
        let store =
            tsunagu_store_postgres::PostgresStore::open(&crate::postgres_config(cfg, db)).map_err(|e| e.to_string())?;
        let done = match deferred {
            Some(d) => {
                d.finish(&store).map_err(|e| format!("building the lookup indexes: {e}"))?;
                "built the lookup indexes and the planner's statistics"
            }
            None => {
                store.analyze().map_err(|e| e.to_string())?;
                "refreshed the planner's statistics"
            }
        };
        eprintln!("{done} in {:.1} s", built.elapsed().as_secs_f64());
    }
    let secs = start.elapsed().as_secs_f64();
    for (name, why) in &failures {
        eprintln!("failed: {name}: {why}");
    }
    println!(
        "imported {written} resources in {secs:.2} s: {:.0} resources/s; {} input(s) failed; peak RSS {} MiB",
        written as f64 / secs.max(1e-9),
        failures.len(),
        peak_rss_mib()
    );
    read_result?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} input(s) could not be imported", failures.len()))
    }
}

fn stage_worker(fhir: &Interactions, rx: &Mutex<Receiver<Input>>, tx: &SyncSender<Outcome>, bar: &ProgressBar) {
    yield_to_writer();
    loop {
        let input = match rx.lock().expect("no worker panics holding it").recv() {
            Ok(i) => i,
            Err(_) => return,
        };
        bar.inc(input.weight);
        let docs: Vec<Result<Value, String>> = if input.ndjson {
            input
                .bytes
                .split(|b| *b == b'\n')
                .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
                .map(|l| tsunagu_format::json_from_slice(l).map_err(|e| e.to_string()))
                .collect()
        } else {
            vec![tsunagu_format::json_from_slice(&input.bytes).map_err(|e| e.to_string())]
        };
        for doc in docs {
            let out = match doc {
                Err(e) => Outcome::Failed(input.name.clone(), format!("not JSON: {e}")),
                Ok(v) if tsunagu_interaction::needs_transaction(&v) => Outcome::Transaction(input.name.clone(), v),
                Ok(v) if tsunagu_interaction::clins::submission_profile(&v).is_some() => {
                    let n = v.get("entry").and_then(Value::as_array).map_or(0, Vec::len) + 1;
                    match fhir.prepare_submission(v) {
                        Ok(p) => Outcome::Submission(input.name.clone(), Box::new(p), n),
                        Err(e) => Outcome::Failed(input.name.clone(), described(&e)),
                    }
                }
                Ok(v) => match fhir.stage(v) {
                    Ok(s) => Outcome::Staged(input.name.clone(), s),
                    Err(e) => Outcome::Failed(input.name.clone(), e.message(Default::default())),
                },
            };
            if tx.send(out).is_err() {
                return;
            }
        }
    }
}

/// Lowers the calling staging thread's priority. The single writer is the pipeline's
/// serial stage: with as many staging threads as cores it was preempted by them a third of
/// the time while they only filled a queue it could not drain. Linux keeps a nice value per
/// thread (setpriority(2), who = 0 is the calling thread); elsewhere this does nothing.
fn yield_to_writer() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

fn write_all(fhir: &Interactions, rx: Receiver<Outcome>, bar: &ProgressBar) -> (usize, Vec<(String, String)>) {
    let mut written = 0usize;
    let mut failures = Vec::new();
    let mut pending: Vec<Staged> = Vec::with_capacity(ROWS_PER_COMMIT * 2);
    let mut pending_names: Vec<String> = Vec::new();
    let flush = |pending: &mut Vec<Staged>,
                 names: &mut Vec<String>,
                 written: &mut usize,
                 failures: &mut Vec<(String, String)>| {
        if pending.is_empty() {
            return;
        }
        match fhir.load(std::mem::take(pending)) {
            Ok(n) => *written += n,
            Err(e) => failures.push((names.join(", "), e.message(Default::default()))),
        }
        names.clear();
        bar.set_message(format!("{} resources", *written));
    };
    let mut submissions: Vec<(String, tsunagu_interaction::clins::PreparedSubmission, usize)> = Vec::new();
    for out in rx {
        if matches!(out, Outcome::Staged(..) | Outcome::Transaction(..)) {
            commit_group(fhir, &mut submissions, &mut written, &mut failures);
        }
        match out {
            Outcome::Staged(name, staged) => {
                pending.extend(staged);
                pending_names.push(name);
                if pending.len() >= ROWS_PER_COMMIT {
                    flush(&mut pending, &mut pending_names, &mut written, &mut failures);
                }
            }
            Outcome::Transaction(name, bundle) => {
                flush(&mut pending, &mut pending_names, &mut written, &mut failures);
                let mut ctx = RequestContext::new("");
                ctx.return_pref = ReturnPreference::Minimal;
                let n = bundle.get("entry").and_then(Value::as_array).map_or(0, Vec::len);
                match fhir.bundle(bundle, &ctx) {
                    Ok(_) => written += n,
                    Err(e) => failures.push((name, e.message(Default::default()))),
                }
            }
            Outcome::Submission(name, prepared, n) => {
                flush(&mut pending, &mut pending_names, &mut written, &mut failures);
                submissions.push((name, *prepared, n));
                if submissions.len() >= SUBMISSIONS_PER_COMMIT {
                    commit_group(fhir, &mut submissions, &mut written, &mut failures);
                }
            }
            Outcome::Failed(name, why) => failures.push((name, why)),
        }
    }
    commit_group(fhir, &mut submissions, &mut written, &mut failures);
    flush(&mut pending, &mut pending_names, &mut written, &mut failures);
    (written, failures)
}

/// Commits the waiting JP-CLINS submissions together (see `commit_submissions`: a failed
/// group is retried one by one, so failures name their own input).
fn commit_group(
    fhir: &Interactions,
    submissions: &mut Vec<(String, tsunagu_interaction::clins::PreparedSubmission, usize)>,
    written: &mut usize,
    failures: &mut Vec<(String, String)>,
) {
    if submissions.is_empty() {
        return;
    }
    let (meta, batch): (Vec<(String, usize)>, Vec<_>) =
        std::mem::take(submissions).into_iter().map(|(name, p, n)| ((name, n), p)).unzip();
    for ((name, n), result) in meta.into_iter().zip(fhir.commit_submissions(batch, &RequestContext::new(""))) {
        match result {
            Ok(_) => *written += n,
            Err(e) => failures.push((name, described(&e))),
        }
    }
}

/// An error with the issues it carries (a refused submission names what is wrong where).
fn described(e: &tsunagu_interaction::InteractionError) -> String {
    let mut out = e.message(Default::default());
    if let tsunagu_interaction::InteractionError::Invalid { issues, .. } = e {
        for i in issues.iter().filter(|i| i.severity == "error").take(10) {
            out.push_str(&format!("\n    {}: {}", i.expression.as_deref().unwrap_or("-"), i.en));
        }
    }
    out
}

/// Bytes under `p` (a file, or a directory counted recursively).
pub(crate) fn input_size(p: &Path) -> u64 {
    if p.is_dir() {
        std::fs::read_dir(p).map(|d| d.flatten().map(|e| input_size(&e.path())).sum()).unwrap_or(0)
    } else {
        std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }
}

pub(crate) fn read_path(p: &Path, tx: &SyncSender<Input>) -> Result<(), String> {
    let name = p.display().to_string();
    if p.is_dir() {
        let mut children: Vec<PathBuf> =
            std::fs::read_dir(p).map_err(|e| format!("{name}: {e}"))?.flatten().map(|e| e.path()).collect();
        children.sort();
        for c in children {
            read_path(&c, tx)?;
        }
        return Ok(());
    }
    let weight = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let file = std::fs::File::open(p).map_err(|e| format!("{name}: {e}"))?;
    if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
        let decoder = zstd::Decoder::new(file).map_err(|e| format!("{name}: {e}"))?;
        read_tar(&name, decoder, weight, tx)
    } else if name.ends_with(".tar") {
        read_tar(&name, file, weight, tx)
    } else if name.ends_with(".json") || name.ends_with(".ndjson") {
        let mut bytes = Vec::with_capacity(weight as usize);
        std::io::BufReader::new(file).read_to_end(&mut bytes).map_err(|e| format!("{name}: {e}"))?;
        send_document(name, bytes, weight, tx)
    } else {
        Ok(())
    }
}

fn read_tar(name: &str, reader: impl Read, weight: u64, tx: &SyncSender<Input>) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| format!("{name}: {e}"))?;
    let mut first = true;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{name}: {e}"))?;
        let path = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
        if !(path.ends_with(".json") || path.ends_with(".ndjson")) {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| format!("{name}/{path}: {e}"))?;
        // The archive's size is counted once, with its first document.
        let w = if std::mem::take(&mut first) { weight } else { 0 };
        send_document(format!("{name}/{path}"), bytes, w, tx)?;
    }
    Ok(())
}

fn send_document(name: String, bytes: Vec<u8>, weight: u64, tx: &SyncSender<Input>) -> Result<(), String> {
    let send = |i: Input| tx.send(i).map_err(|_| "the import stopped".to_string());
    if !name.ends_with(".ndjson") {
        return send(Input { name, bytes, ndjson: false, weight });
    }
    // Split NDJSON into chunks so that workers share a large file.
    let mut chunk = Vec::new();
    let mut lines = 0;
    let mut w = weight;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        chunk.extend_from_slice(line);
        lines += 1;
        if lines == NDJSON_LINES_PER_UNIT {
            send(Input {
                name: name.clone(),
                bytes: std::mem::take(&mut chunk),
                ndjson: true,
                weight: std::mem::take(&mut w),
            })?;
            lines = 0;
        }
    }
    if !chunk.is_empty() {
        send(Input { name, bytes: chunk, ndjson: true, weight: w })?;
    }
    Ok(())
}

/// Peak resident set size of this process, from /proc (0 where unavailable).
pub fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
