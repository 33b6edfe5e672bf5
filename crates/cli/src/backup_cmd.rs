//! `tsunagu backup …`, `tsunagu restore` and `tsunagu drill`: command-line wiring of
//! `tsunagu-backup`. The backup logic and format live there.

use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use tsunagu_backup as backup;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub action: Option<BackupAction>,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Backup directory (offline media, a mounted write-once share…).
    #[arg(long)]
    pub to: Option<PathBuf>,
    #[command(flatten)]
    pub recipient: RecipientArgs,
}

#[derive(Args)]
pub struct RecipientArgs {
    /// age public key (age1…) the backup is encrypted to.
    #[arg(long, env = "TSUNAGU_BACKUP_RECIPIENT")]
    pub recipient: Option<String>,
    /// File holding the public key (as written by `backup keygen`, `*.pub`).
    #[arg(long, conflicts_with = "recipient")]
    pub recipient_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum BackupAction {
    /// Creates an age key pair: the identity (private key) goes to --out, the public key
    /// to --out.pub and standard output. Keep the identity off the server.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Checks every file of a backup against its checksums, without the private key.
    Verify {
        dir: PathBuf,
        /// The manifest checksum printed by `backup`, kept outside the media.
        #[arg(long)]
        expect: Option<String>,
    },
    /// Lists the generations of a backup directory.
    List { dir: PathBuf },
    /// Deletes generations outside the retention policy and packs no kept generation needs.
    Prune {
        dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        keep_last: usize,
        #[arg(long, default_value_t = 7)]
        keep_daily: usize,
        #[arg(long, default_value_t = 4)]
        keep_weekly: usize,
        #[arg(long, default_value_t = 12)]
        keep_monthly: usize,
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(cfg: &crate::config::Config, args: BackupArgs) -> Result<(), String> {
    match args.action {
        None => {
            let to = args.create.to.ok_or("backup needs --to DIR (or a subcommand: keygen, verify, list, prune)")?;
            let recipient = recipient(&args.create.recipient)?;
            let c = match &cfg.database {
                Some(_) => backup::backup_store(crate::open_store(cfg)?.as_ref(), &to, &recipient),
                None => backup::backup(&cfg.data, &to, &recipient),
            }
            .map_err(|e| e.to_string())?;
            let s = &c.manifest.stats;
            println!(
                "generation {}: {} versions ({} live resources, {:.1} MB of bodies) in {:.2} s",
                c.manifest.generation,
                s.versions,
                s.live_resources,
                s.body_bytes as f64 / 1e6,
                s.seconds
            );
            println!(
                "  new: {} bodies in {} packs; reused: {} bodies; written: {:.2} MB",
                s.new_blobs,
                s.new_packs,
                s.reused_blobs,
                s.bytes_written as f64 / 1e6
            );
            println!(
                "manifest sha256 {} (record it outside the backup media; `backup verify --expect` checks it)",
                c.manifest_sha256
            );
            Ok(())
        }
        Some(BackupAction::Keygen { out }) => keygen(&out),
        Some(BackupAction::Verify { dir, expect }) => {
            let v = backup::verify(&dir, expect.as_deref()).map_err(|e| e.to_string())?;
            for g in &v.generations {
                println!(
                    "{} {} {} versions, manifest sha256 {}",
                    if g.ok { "ok     " } else { "DAMAGED" },
                    g.generation,
                    g.versions,
                    g.manifest_sha256
                );
            }
            for u in &v.unreferenced {
                println!("note: {u} belongs to no generation (an interrupted backup; prune removes it)");
            }
            println!("{} files, {:.1} MB checked", v.files_checked, v.bytes_checked as f64 / 1e6);
            if v.problems.is_empty() {
                println!("backup intact");
                Ok(())
            } else {
                for p in &v.problems {
                    eprintln!("problem: {p}");
                }
                Err(format!("{} problem(s) found in {}", v.problems.len(), dir.display()))
            }
        }
        Some(BackupAction::List { dir }) => {
            for f in backup::generations(&dir).map_err(|e| e.to_string())? {
                let m = &f.manifest;
                println!(
                    "{}  {} versions  {} live  {:.2} MB written  manifest {}",
                    m.generation,
                    m.stats.versions,
                    m.stats.live_resources,
                    m.stats.bytes_written as f64 / 1e6,
                    f.sha256
                );
            }
            Ok(())
        }
        Some(BackupAction::Prune { dir, keep_last, keep_daily, keep_weekly, keep_monthly, dry_run }) => {
            let keep = backup::Keep { last: keep_last, daily: keep_daily, weekly: keep_weekly, monthly: keep_monthly };
            let p = backup::prune(&dir, keep, dry_run).map_err(|e| e.to_string())?;
            println!(
                "{}kept {} generations, removed {} generations and {} packs ({:.1} MB)",
                if dry_run { "(dry run) " } else { "" },
                p.kept.len(),
                p.removed.len(),
                p.packs_removed,
                p.bytes_freed as f64 / 1e6
            );
            Ok(())
        }
    }
}

fn recipient(a: &RecipientArgs) -> Result<backup::Recipient, String> {
    let text = match (&a.recipient, &a.recipient_file) {
        (Some(r), _) => r.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("age1"))
            .ok_or_else(|| format!("{}: no age1… public key", f.display()))?
            .to_string(),
        (None, None) => return Err("backup needs --recipient age1… or --recipient-file FILE".into()),
    };
    backup::parse_recipient(&text).map_err(|e| e.to_string())
}

fn keygen(out: &Path) -> Result<(), String> {
    if out.exists() {
        return Err(format!("{} exists; not overwriting a key", out.display()));
    }
    let (identity, public) = backup::keygen();
    write_private(out, &identity)?;
    let pubfile = PathBuf::from(format!("{}.pub", out.display()));
    std::fs::write(&pubfile, format!("{public}\n")).map_err(|e| format!("{}: {e}", pubfile.display()))?;
    eprintln!(
        "identity (private key) written to {}: keep it offline, never on the server or the backup media",
        out.display()
    );
    println!("{public}");
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| format!("{}: {e}", path.display()))
}

/// `tsunagu restore`: rebuilds the data directory from a generation.
pub fn restore(
    cfg: &crate::config::Config,
    from: &Path,
    generation: Option<&str>,
    identity: &Path,
    force: bool,
) -> Result<(), String> {
    let identity = backup::load_identity(identity).map_err(|e| e.to_string())?;
    if let Some(db) = &cfg.database {
        // Into the (empty) database; a server opened afterwards starts its clock there.
        let store = crate::open_store(cfg)?;
        let r = backup::restore_into_store(from, generation, &identity, store, None).map_err(|e| e.to_string())?;
        report_restore(&r, &crate::config::redacted(&db.url));
        return Ok(());
    }
    let target = &cfg.data;
    if force && target.exists() {
        let aside = aside(target, "before-restore");
        std::fs::rename(target, &aside).map_err(|e| format!("{}: {e}", target.display()))?;
        eprintln!("moved the existing data directory to {}", aside.display());
    }
    let r = backup::restore(from, generation, &identity, target).map_err(|e| e.to_string())?;
    report_restore(&r, &target.display().to_string());
    Ok(())
}

fn report_restore(r: &backup::Restored, target: &str) {
    let d = &r.digest;
    println!(
        "restored generation {} into {}: {} versions, {} resources ({} live), {:.1} MB of bodies in {:.2} s",
        r.generation,
        target,
        d.versions,
        d.resources,
        d.live_resources,
        d.body_bytes as f64 / 1e6,
        r.seconds
    );
    println!("content sha256 {} matches the backup", d.sha256);
    println!(
        "search indexes rebuilt: {}",
        if !r.indexes_compared {
            "not compared (the backup was taken from PostgreSQL, which records no index digest)"
        } else if r.indexes_identical {
            "identical to the source"
        } else {
            "they differ from the source's (the index code changed since the backup)"
        }
    );
}

fn aside(target: &Path, what: &str) -> PathBuf {
    let ts = chrono_like_now();
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    target.with_file_name(format!("{name}.{what}-{ts}"))
}

fn chrono_like_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `tsunagu drill`: the ransomware drill. Backs up the data directory, scrambles it as
/// ransomware would, restores the newest generation and proves the content is back.
pub fn drill(cfg: &crate::config::Config, to: &Path, identity_path: &Path, confirm: bool) -> Result<(), String> {
    if !confirm {
        return Err(format!(
            "the drill scrambles {}; stop the server, then run again with --confirm",
            cfg.data.display()
        ));
    }
    crate::sqlite_only(cfg, "the restore drill")?;
    let data = &cfg.data;
    let identity = backup::load_identity(identity_path).map_err(|e| e.to_string())?;
    let (before, _) = backup::digest_dir(data).map_err(|e| e.to_string())?;
    println!(
        "1. live data: {} versions, {} live resources, content sha256 {}",
        before.versions, before.live_resources, before.sha256
    );
    let c = backup::backup(data, to, &identity.to_public()).map_err(|e| e.to_string())?;
    println!(
        "2. backup generation {} ({} new bodies, {:.2} MB written)",
        c.manifest.generation,
        c.manifest.stats.new_blobs,
        c.manifest.stats.bytes_written as f64 / 1e6
    );
    let scrambled = scramble(data)?;
    let readable = backup::digest_dir(data).is_ok();
    println!("3. scrambled {scrambled} files in {} (store readable afterwards: {readable})", data.display());
    let quarantine = aside(data, "scrambled");
    std::fs::rename(data, &quarantine).map_err(|e| format!("{}: {e}", data.display()))?;
    println!("   quarantined to {}", quarantine.display());
    let r = backup::restore(to, None, &identity, data).map_err(|e| e.to_string())?;
    println!("4. restored generation {} in {:.2} s", r.generation, r.seconds);
    let (after, _) = backup::digest_dir(data).map_err(|e| e.to_string())?;
    println!(
        "5. restored data: {} versions, {} live resources, content sha256 {}",
        after.versions, after.live_resources, after.sha256
    );
    if after == before {
        println!("drill passed: every write acknowledged before the backup is back, byte for byte");
        Ok(())
    } else {
        Err("drill FAILED: the restored content differs from the data before the attack".into())
    }
}

/// Overwrites every file with noise and renames it, as file-encrypting ransomware does.
fn scramble(dir: &Path) -> Result<usize, String> {
    let mut n = 0;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ chrono_like_now();
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = e.map_err(|e| e.to_string())?.path();
        if !path.is_file() {
            continue;
        }
        let len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len() as usize;
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(&path, noise).map_err(|e| format!("{}: {e}", path.display()))?;
        let locked = PathBuf::from(format!("{}.locked", path.display()));
        std::fs::rename(&path, locked).map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}
