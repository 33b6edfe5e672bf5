//! `tsunagu bench backup`: throughput of backup and restore on the configured data
//! directory, and the size of an incremental backup after a share of the resources
//! changed. The source is only read; changes are made to a restored copy.

use std::sync::Arc;
use std::time::Instant;
use tsunagu_backup as backup;

pub fn run(cfg: &crate::config::Config, change_percent: f64) -> Result<(), String> {
    let err = |e: backup::BackupError| e.to_string();
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key_path = work.path().join("identity.txt");
    std::fs::write(&key_path, backup::keygen().0).map_err(|e| e.to_string())?;
    let identity = backup::load_identity(&key_path).map_err(err)?;
    let recipient = identity.to_public();
    let dest = work.path().join("backup");
    let db_bytes =
        std::fs::metadata(cfg.data.join("tsunagu.sqlite")).map_err(|e| format!("{}: {e}", cfg.data.display()))?.len();

    let full = backup::backup(&cfg.data, &dest, &recipient).map_err(err)?;
    let s = &full.manifest.stats;
    let mb = s.body_bytes as f64 / 1e6;
    println!(
        "source: {} versions, {} live resources, {:.1} MB of JSON bodies, {:.1} MB SQLite file",
        s.versions,
        s.live_resources,
        mb,
        db_bytes as f64 / 1e6
    );
    println!(
        "full backup:        {:6.2} s  {:7.1} MB/s  {:8.0} resources/s  -> {:.1} MB on the backup media ({:.1}% of the bodies)",
        s.seconds,
        mb / s.seconds,
        s.versions as f64 / s.seconds,
        s.bytes_written as f64 / 1e6,
        100.0 * s.bytes_written as f64 / s.body_bytes.max(1) as f64
    );

    let t = Instant::now();
    let v = backup::verify(&dest, Some(&full.manifest_sha256)).map_err(err)?;
    let secs = t.elapsed().as_secs_f64();
    println!("verify (no key):    {:6.2} s  {:7.1} MB/s of backup files", secs, v.bytes_checked as f64 / 1e6 / secs);

    let restored = work.path().join("restored");
    let r = backup::restore(&dest, None, &identity, &restored).map_err(err)?;
    println!(
        "restore:            {:6.2} s  {:7.1} MB/s  {:8.0} resources/s  (indexes rebuilt, identical: {})",
        r.seconds,
        mb / r.seconds,
        s.versions as f64 / r.seconds,
        r.indexes_identical
    );

    let changed = change(&restored, change_percent)?;
    let inc = backup::backup(&restored, &dest, &recipient).map_err(err)?;
    let i = &inc.manifest.stats;
    println!(
        "incremental after changing {changed} resources ({change_percent}%): {:.2} s, {:.3} MB written ({} new bodies, {} reused), {:.2}% of the full backup",
        i.seconds,
        i.bytes_written as f64 / 1e6,
        i.new_blobs,
        i.reused_blobs,
        100.0 * i.bytes_written as f64 / s.bytes_written.max(1) as f64
    );
    Ok(())
}

/// Updates every n-th live resource (sets `language`), through the interaction layer.
fn change(dir: &std::path::Path, percent: f64) -> Result<usize, String> {
    let step = (100.0 / percent.max(0.001)).round().max(1.0) as usize;
    let mut picked = Vec::new();
    {
        let snap = tsunagu_store::Snapshot::open(dir).map_err(|e| e.to_string())?;
        let mut live = std::collections::HashMap::new();
        snap.versions(|v| -> Result<(), tsunagu_store::StoreError> {
            live.insert((v.resource_type.clone(), v.id.clone()), v);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        let mut keys: Vec<_> = live.into_values().filter(|v| !v.deleted).collect();
        keys.sort_by_key(|v| v.seq);
        picked.extend(keys.into_iter().step_by(step));
    }
    let store = tsunagu_store::SqliteStore::open(dir, tsunagu_store::SyncMode::Normal).map_err(|e| e.to_string())?;
    let fhir = tsunagu_interaction::Interactions::new(
        Arc::new(store),
        Arc::new(tsunagu_interaction::NoCheck),
        Default::default(),
    );
    for v in &picked {
        let mut body: serde_json::Value = serde_json::from_slice(&v.body).map_err(|e| e.to_string())?;
        let lang = if body.get("language").and_then(|l| l.as_str()) == Some("ja") { "en" } else { "ja" };
        body["language"] = lang.into();
        fhir.update(
            &v.resource_type,
            &v.id,
            body,
            None,
            &tsunagu_interaction::RequestContext::for_caller("", tsunagu_interaction::Caller::operator("bench")),
        )
        .map_err(|e| format!("{}/{}: {e:?}", v.resource_type, v.id))?;
    }
    Ok(picked.len())
}
