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
