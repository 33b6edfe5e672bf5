//! `tsunagu synth` (Japanese synthetic JP-CLINS data) and `tsunagu hpki verify` (a
//! document's HPKI signature, for operators).

use std::path::{Path, PathBuf};

use clap::Subcommand;

#[derive(Subcommand)]
pub enum HpkiAction {
    /// Verifies the signature of a document Bundle (JSON): the JWS, the certificate chain
    /// to the trust anchors, validity, revocation (CRLs) and the signer's hcRole for the
    /// document type. Exit 1 when it does not hold.
    Verify {
        /// The document Bundle (JSON).
        file: PathBuf,
        /// Trust anchors (PEM or DER; the HPKI roots); repeatable.
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
        /// Certificate revocation lists (PEM or DER); repeatable.
        #[arg(long = "crl")]
        crls: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum ClinsAction {
    /// Deletes items (and submissions) past `retention_days` / `lts_retention_days`;
    /// each deletion is audited as `operator:purge`.
    Purge,
}

/// `tsunagu clins purge`.
pub fn purge(cfg: &crate::config::Config) -> Result<(), String> {
    if cfg.retention.days.is_none() && cfg.retention.lts_days.is_none() {
        return Err("no retention period is configured (retention_days, lts_retention_days)".into());
    }
    let fhir = crate::open(cfg, false)?;
    let report = purge_now(&fhir, cfg.retention)?;
    println!(
        "{} submissions looked at, {} items and {} submissions deleted",
        report.submissions_seen, report.items_deleted, report.submissions_deleted
    );
    Ok(())
}

pub fn purge_now(
    fhir: &tsunagu_interaction::Interactions,
    retention: tsunagu_interaction::clins::Retention,
) -> Result<tsunagu_interaction::clins::PurgeReport, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    fhir.purge_expired(retention, now).map_err(|e| e.message(Default::default()))
}

/// Runs the purge every hour on a thread of its own while the server runs.
pub fn spawn_purge(
    fhir: std::sync::Arc<tsunagu_interaction::Interactions>,
    retention: tsunagu_interaction::clins::Retention,
) {
    if retention.days.is_none() && retention.lts_days.is_none() {
        return;
    }
    let spawned = std::thread::Builder::new().name("tsunagu-purge".into()).spawn(move || loop {
        match purge_now(&fhir, retention) {
            Ok(r) if r.items_deleted + r.submissions_deleted > 0 => {
                tracing::info!("retention: {} items and {} submissions deleted", r.items_deleted, r.submissions_deleted)
            }
            Ok(_) => {}
            Err(e) => tracing::error!("retention purge failed: {e}"),
        }
        std::thread::sleep(std::time::Duration::from_secs(3600));
    });
    if let Err(e) = spawned {
        tracing::error!("the retention purge could not start: {e}");
    }
}

/// The trust store from anchor and CRL files.
pub fn trust_store(anchors: &[PathBuf], crls: &[PathBuf]) -> Result<tsunagu_hpki::TrustStore, String> {
    let mut trust = tsunagu_hpki::TrustStore::new();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    for p in anchors {
        trust.add_anchors(&read(p)?).map_err(|e| format!("{}: {}", p.display(), e.message_en()))?;
    }
    for p in crls {
        trust.add_crls(&read(p)?).map_err(|e| format!("{}: {}", p.display(), e.message_en()))?;
    }
    Ok(trust)
}

/// Prints the verified signer, or why the signature does not hold (`Ok(false)`).
pub fn hpki(cfg: &crate::config::Config, action: HpkiAction) -> Result<bool, String> {
    let HpkiAction::Verify { file, trust, crls } = action;
    let trust = trust_store(&trust, &crls)?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let bundle: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    match tsunagu_hpki::verify_bundle(&bundle, &trust, &cfg.hpki.policy(), std::time::SystemTime::now()) {
        Ok(verified) => {
            println!("{verified}");
            Ok(true)
        }
        Err(e) => {
            println!("signature does not hold: {}\n署名を確認できません: {}", e.message_en(), e.message_ja());
            Ok(false)
        }
    }
}

/// `tsunagu synth`: writes one NDJSON file per kind of Bundle into `out`.
pub fn synth(patients: usize, seed: u64, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let start = std::time::Instant::now();
    let stats = tsunagu_synth::write_dir(&tsunagu_synth::SynthOptions { patients, seed }, out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} patients, {} resources in {:.2} s ({:.0} patients/s) into {}",
        stats.patients,
        stats.resources,
        secs,
        stats.patients as f64 / secs.max(1e-9),
        out.display()
    );
    for (kind, n) in &stats.bundles_per_kind {
        println!("  {}.ndjson: {n} Bundles", kind.file_stem());
    }
    Ok(())
}
