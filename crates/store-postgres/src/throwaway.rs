//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, a server
//! on a free loopback port (fsync off, small buffers), a fresh database per test, and
//! optionally a streaming replica (`pg_basebackup -R`, hot standby).
//!
//! Statics are never dropped, so a watchdog process (a shell loop on the test process's
//! pid, in a session of its own) stops the servers (`pg_ctl stop -m immediate`) and
//! removes the directory once the test process has exited, however it exits.
//!
//! The PostgreSQL binaries (`initdb`, `pg_ctl`, `postgres`, `pg_basebackup`) are taken
//! from `TSUNAGU_PG_BIN` (a directory) when it is set, else from PATH, else from the newest
//! `/usr/lib/postgresql/*/bin` (where Debian's `postgresql` package puts them). When they are not: with `CI=true` that is a failure (panic); otherwise a loud
//! `SKIPPED: PostgreSQL not installed` goes to stderr and the caller skips. `initdb`
//! refuses to run as root, so as root the servers run as the `postgres` user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::{PostgresConfig, PostgresStore};

/// A running primary (and maybe replica), stopped and removed when the process exits.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    replica_port: Option<u16>,
    databases: AtomicUsize,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Where a PostgreSQL program is (see the module documentation).
fn program(name: &str) -> Option<PathBuf> {
    let found = |dir: &Path| Some(dir.join(name)).filter(|p| p.is_file());
    if let Some(dir) = std::env::var_os("TSUNAGU_PG_BIN") {
        return found(Path::new(&dir));
    }
    if let Some(p) = std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find_map(|d| found(&d))) {
        return Some(p);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    versions.iter().rev().find_map(|(_, dir)| found(dir))
}

/// runuser is in /usr/sbin, which a root shell's PATH may lack.
fn runuser() -> &'static str {
    ["/usr/sbin/runuser", "/sbin/runuser"].into_iter().find(|p| Path::new(p).is_file()).unwrap_or("runuser")
}

/// `program args…`, as the `postgres` user when we are root.
fn pg_command(name: &str) -> Command {
    let path = program(name).map_or_else(|| name.to_string(), |p| p.display().to_string());
    if is_root() {
        let mut c = Command::new(runuser());
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn installed() -> bool {
    ["initdb", "pg_ctl", "postgres", "pg_basebackup"].iter().all(|name| {
        program(name).is_some_and(|p| {
            Command::new(p)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    })
}

/// Whether the binaries are there; panics under CI when they are not, else says SKIPPED.
pub fn available() -> bool {
    if installed() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL binaries (initdb, pg_ctl, postgres, pg_basebackup) are not installed, and CI=true");
    }
    eprintln!("SKIPPED: PostgreSQL not installed (initdb, pg_ctl, postgres, pg_basebackup not found)");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl Cluster {
    /// Starts a primary; with `replica`, also a streaming replica of it. `None` (after
    /// saying SKIPPED) when PostgreSQL is not installed.
    pub fn start(replica: bool) -> Option<Cluster> {
        if !available() {
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tsunagu-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        if is_root() {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:", &dir.display().to_string()]);
            run(c, "chown").expect("chown to postgres");
        }
        let mut cluster = Cluster { dir, port: 0, replica_port: None, databases: AtomicUsize::new(0) };
        cluster.watchdog();
        cluster.port = cluster.init().unwrap_or_else(|e| panic!("throwaway PostgreSQL: {e}"));
        if replica {
            let port = cluster.start_replica().unwrap_or_else(|e| panic!("throwaway PostgreSQL replica: {e}"));
            cluster.replica_port = Some(port);
        }
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn replica_data(&self) -> PathBuf {
        self.dir.join("replica")
    }

    /// Creates and starts the primary; its port.
    fn init(&self) -> Result<u16, String> {
        let data = self.data();
        let mut c = pg_command("initdb");
        c.args(["-D", &data.display().to_string(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        c.args(["--locale=C"]);
        run(c, "initdb")?;
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n\
             full_page_writes = off\nshared_buffers = 16MB\nmax_connections = 300\nwal_level = replica\n\
             max_wal_senders = 4\nhot_standby = on\nlog_min_messages = warning\n",
            self.dir.display()
        );
        append(&data.join("postgresql.conf"), &conf)?;
        start_on_free_port(&data, &self.dir.join("primary.log"))
    }

    /// Creates and starts the replica; its port.
    fn start_replica(&self) -> Result<u16, String> {
        let replica = self.replica_data();
        let mut c = pg_command("pg_basebackup");
        c.args(["-D", &replica.display().to_string(), "-R", "-X", "stream", "-h", "127.0.0.1", "-U", "postgres"]);
        c.args(["-p", &self.port.to_string()]);
        run(c, "pg_basebackup")?;
        start_on_free_port(&replica, &self.dir.join("replica.log"))
    }

    /// Stops the servers and removes the directory once this process has exited.
    fn watchdog(&self) {
        let dir = self.dir.display().to_string();
        let as_pg = if is_root() { format!("{} -u postgres -- ", runuser()) } else { String::new() };
        let pg_ctl = program("pg_ctl").map_or_else(|| "pg_ctl".to_string(), |p| p.display().to_string());
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             for d in '{dir}/replica' '{dir}/data'; do [ -d \"$d\" ] && {as_pg}'{pg_ctl}' -D \"$d\" -m immediate stop >/dev/null 2>&1; done; \
             rm -rf '{dir}'",
            pid = std::process::id()
        );
        let mut c = Command::new("setsid");
        c.args(["sh", "-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        if c.spawn().is_err() {
            let _ = Command::new("sh").args(["-c", &script]).stdin(Stdio::null()).spawn();
        }
    }

    /// A connection URL to database `db` on the primary.
    pub fn url(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=10", self.port)
    }

    /// A connection URL to database `db` on the replica, if there is one.
    pub fn replica_url(&self, db: &str) -> Option<String> {
        self.replica_port.map(|p| format!("host=127.0.0.1 port={p} user=postgres dbname={db} connect_timeout=10"))
    }

    /// Creates a fresh empty database; its name.
    pub fn create_database(&self) -> String {
        let name = format!("t_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let mut c = crate::pool::connect(&self.url("postgres")).expect("connect to the throwaway cluster");
        c.batch_execute(&format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
        name
    }

    /// A configuration for a fresh database (with the replica, if there is one).
    pub fn fresh_config(&self) -> PostgresConfig {
        let db = self.create_database();
        PostgresConfig { replicas: self.replica_url(&db).into_iter().collect(), ..PostgresConfig::new(&self.url(&db)) }
    }

    /// Stops the primary at once (for tests of failing commits); the watchdog still cleans up.
    pub fn stop_primary(&self) {
        let mut c = pg_command("pg_ctl");
        c.args(["-D", &self.data().display().to_string(), "-m", "immediate", "stop"]);
        let _ = run(c, "pg_ctl stop");
    }
}

impl Cluster {
    /// Stops the primary at once and starts it again (pooled connections are then broken).
    pub fn restart_primary(&self) {
        self.stop_primary();
        start(&self.data(), &self.dir.join("primary.log"), self.port).unwrap_or_else(|e| panic!("restart: {e}"));
    }
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

/// Starts a server on a port found free; again on another if someone took it meanwhile.
fn start_on_free_port(data: &Path, log: &Path) -> Result<u16, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        match start(data, log, port) {
            Ok(()) => return Ok(port),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn start(data: &Path, log: &Path, port: u16) -> Result<(), String> {
    let mut c = pg_command("pg_ctl");
    c.args(["-D", &data.display().to_string(), "-l", &log.display().to_string(), "-w", "-t", "60"]);
    c.args(["-o", &format!("-p {port}"), "start"]);
    run(c, "pg_ctl start").map_err(|e| format!("{e}\n{}", std::fs::read_to_string(log).unwrap_or_default()))
}

/// The process-wide shared cluster (no replica), started on first use.
pub fn shared() -> Option<&'static Cluster> {
    static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::start(false)).as_ref()
}

/// A store on a fresh database of the shared cluster; `None` (after saying SKIPPED)
/// when PostgreSQL is not installed.
pub fn test_store() -> Option<Arc<PostgresStore>> {
    let cluster = shared()?;
    Some(Arc::new(PostgresStore::open(&cluster.fresh_config()).expect("open a store on the throwaway cluster")))
}
