//! The registry of clients (and, beside them in the same file, users): who may ask for
//! tokens, with which keys and up to which scopes, and the `jti`s of accepted client
//! assertions. It lives in `<data>/auth/registry.sqlite`, written by the operator's CLI
//! and read by the server, so a client disabled from the command line is refused by a
//! running server from a millisecond later (SQLite's `data_version` says when to reread).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::{AuthError, JtiLog, ScopeSet};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS client (
    id           TEXT PRIMARY KEY,
    jwks         TEXT,
    jwks_url     TEXT,
    scope        TEXT NOT NULL,
    role         TEXT,
    organization TEXT,
    institution  TEXT,
    patient      TEXT,
    tls_thumbprint TEXT,
    redirect_uris TEXT NOT NULL DEFAULT '',
    disabled     INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS assertion_jti (
    client TEXT NOT NULL,
    jti    TEXT NOT NULL,
    exp    INTEGER NOT NULL,
    PRIMARY KEY (client, jti)
) WITHOUT ROWID;
";

/// A registered client (a hospital system, an app, a backend service).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Client {
    pub id: String,
    /// The JWKS its assertions are signed with, given at registration…
    pub jwks: Option<serde_json::Value>,
    /// …or fetched from this URL.
    pub jwks_url: Option<String>,
    /// The most it may be granted.
    pub scope: String,
    pub role: Option<String>,
    pub organization: Option<String>,
    /// The 10-digit 医療機関コード of the institution it acts for (JP-CLINS submissions
    /// are made under it; other institutions' items are shared with it only by consent).
    pub institution: Option<String>,
    pub patient: Option<String>,
    /// RFC 8705 `x5t#S256` of the TLS client certificate that identifies it, if any.
    pub tls_thumbprint: Option<String>,
    /// Where an app used by people may be sent back with a code (authorization_code).
    pub redirect_uris: Vec<String>,
    pub disabled: bool,
}

/// The registry over one SQLite file.
pub struct Registry {
    conn: Mutex<Connection>,
    /// A second connection for the user store: a sign-in hashes a password (tens of
    /// milliseconds) while holding it, and must not hold up the token checks of every
    /// other request, which use `conn`.
    users_conn: Mutex<Connection>,
    /// Disabled clients (`client:<id>`) and users (`user:<id>`), read by every request.
    disabled: RwLock<Arc<HashSet<String>>>,
    /// The registry's `data_version` when `disabled` was read; -1: read it again.
    version: AtomicI64,
    /// When `data_version` was last looked at (µs since `opened`).
    checked_at: AtomicU64,
    opened: Instant,
}

/// How often a request looks whether another process (the operator's CLI) changed the
/// registry: a client disabled there is refused by requests from this long after.
const RECHECK_MICROS: u64 = 1_000;

impl Registry {
    /// Opens (creating) `<dir>/registry.sqlite`, readable by its owner only.
    pub fn open(dir: &Path) -> Result<Registry, AuthError> {
        crate::keys::create_private_dir(dir)?;
        let path = dir.join("registry.sqlite");
        let conn = Connection::open(&path).map_err(db)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;").map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        add_institution_column(&conn)?;
        crate::users::UserStore::migrate(&conn)?;
        let users_conn = Connection::open(&path).map_err(db)?;
        users_conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        users_conn.execute_batch("PRAGMA synchronous=FULL;").map_err(db)?;
        Ok(Registry {
            conn: Mutex::new(conn),
            users_conn: Mutex::new(users_conn),
            disabled: RwLock::new(Arc::new(HashSet::new())),
            version: AtomicI64::new(-1),
            checked_at: AtomicU64::new(0),
            opened: Instant::now(),
        })
    }

    /// Runs `f` on the user store's connection.
    pub fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let out = f(&self.users_conn.lock());
        self.forget_disabled();
        out
    }

    /// `data_version` only moves for other connections' commits; this process's own
    /// changes (a client or user disabled through it) must drop the cached set explicitly.
    fn forget_disabled(&self) {
        self.version.store(-1, Ordering::SeqCst);
        self.checked_at.store(0, Ordering::SeqCst);
    }

    /// Registers a client; its scopes must parse, and its keys (when given) must be a JWKS.
    pub fn add_client(&self, c: &Client, now: u64) -> Result<(), AuthError> {
        ScopeSet::parse(&c.scope)?;
        if let Some(jwks) = &c.jwks {
            if !jwks.get("keys").is_some_and(serde_json::Value::is_array) {
                return Err(AuthError::InvalidClient("the key set must be a JWKS ({\"keys\": [...]})".into()));
            }
        }
        if c.jwks.is_none() && c.jwks_url.is_none() && c.tls_thumbprint.is_none() && c.redirect_uris.is_empty() {
            return Err(AuthError::InvalidClient(
                "a client needs a JWKS, a JWKS URL, a TLS certificate or (an app used by people) a redirect URI".into(),
            ));
        }
        if let Some(i) = &c.institution {
            if !is_institution_code(i) {
                return Err(AuthError::InvalidClient(format!("'{i}' is not a 10-digit 医療機関コード")));
            }
        }
        if let Some(bad) = c.redirect_uris.iter().find(|u| u.contains(['#', ' ']) || !u.contains("://")) {
            return Err(AuthError::InvalidClient(format!("'{bad}' is not a redirect URI")));
        }
        let jwks = c.jwks.as_ref().map(|j| j.to_string());
        self.conn
            .lock()
            .execute(
                "INSERT INTO client (id, jwks, jwks_url, scope, role, organization, patient, tls_thumbprint,
                                     redirect_uris, disabled, created, institution)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11)",
                params![
                    c.id,
                    jwks,
                    c.jwks_url,
                    c.scope,
                    c.role,
                    c.organization,
                    c.patient,
                    c.tls_thumbprint,
                    c.redirect_uris.join(" "),
                    now as i64,
                    c.institution
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    AuthError::InvalidClient(format!("a client '{}' is already registered", c.id))
                }
                e => db(e),
            })?;
        Ok(())
    }

    pub fn client(&self, id: &str) -> Result<Option<Client>, AuthError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, jwks, jwks_url, scope, role, organization, patient, tls_thumbprint, disabled, redirect_uris,
                        institution
                 FROM client WHERE id = ?1",
            )
            .map_err(db)?;
        stmt.query_row([id], row_to_client).optional().map_err(db)
    }

    /// The client a TLS certificate identifies.
    pub fn client_by_thumbprint(&self, thumbprint: &str) -> Result<Option<Client>, AuthError> {
        let id: Option<String> = self
            .conn
            .lock()
            .query_row("SELECT id FROM client WHERE tls_thumbprint = ?1 AND disabled = 0", [thumbprint], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match id {
            Some(id) => self.client(&id),
            None => Ok(None),
        }
    }

    pub fn clients(&self) -> Result<Vec<Client>, AuthError> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, jwks, jwks_url, scope, role, organization, patient, tls_thumbprint, disabled, redirect_uris,
                        institution
                 FROM client ORDER BY id",
            )
            .map_err(db)?;
        let rows = stmt.query_map([], row_to_client).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Disables a client: no new tokens, and those it holds stop working at once.
    pub fn disable_client(&self, id: &str) -> Result<(), AuthError> {
        let n = self.conn.lock().execute("UPDATE client SET disabled = 1 WHERE id = ?1", [id]).map_err(db)?;
        self.forget_disabled();
        if n == 0 {
            return Err(AuthError::InvalidClient(format!("no client '{id}' is registered")));
        }
        Ok(())
    }

    /// Whether tokens of this client must be refused now.
    pub fn is_client_disabled(&self, client: &str) -> bool {
        self.disabled_now(client, None)
    }

    /// Whether a token of `client` (for `user`, when a person signed in) must be refused
    /// now. Runs on every request: a read lock, and at most every millisecond one look at
    /// the registry's `data_version`.
    pub fn disabled_now(&self, client: &str, user: Option<&str>) -> bool {
        if !self.refresh() {
            // An unreadable registry refuses everyone rather than no one.
            return true;
        }
        let set = self.disabled.read().clone();
        set.contains(&format!("client:{client}")) || user.is_some_and(|u| set.contains(&format!("user:{u}")))
    }

    /// Rereads the disabled set if the registry changed; false when it cannot be read.
    fn refresh(&self) -> bool {
        let now = self.opened.elapsed().as_micros() as u64 + RECHECK_MICROS;
        let last = self.checked_at.load(Ordering::Acquire);
        let stale = self.version.load(Ordering::Acquire) < 0;
        if !stale && now.saturating_sub(last) < RECHECK_MICROS {
            return true;
        }
        // One thread looks; the others go on with the set they have.
        if !stale && self.checked_at.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return true;
        }
        let conn = self.conn.lock();
        let version: i64 =
            match conn.prepare_cached("PRAGMA data_version").and_then(|mut s| s.query_row([], |r| r.get(0))) {
                Ok(v) => v,
                Err(_) => return false,
            };
        if version != self.version.load(Ordering::Acquire) {
            match disabled_principals(&conn) {
                Ok(set) => *self.disabled.write() = Arc::new(set),
                Err(_) => return false,
            }
            self.version.store(version, Ordering::Release);
        }
        self.checked_at.store(now, Ordering::Release);
        true
    }
}

fn disabled_principals(conn: &Connection) -> Result<HashSet<String>, rusqlite::Error> {
    let mut set = HashSet::new();
    for (kind, sql) in
        [("client", "SELECT id FROM client WHERE disabled = 1"), ("user", "SELECT id FROM users WHERE disabled = 1")]
    {
        let mut stmt = conn.prepare_cached(sql)?;
        for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
            set.insert(format!("{kind}:{}", id?));
        }
    }
    Ok(set)
}

fn row_to_client(r: &rusqlite::Row<'_>) -> rusqlite::Result<Client> {
    let jwks: Option<String> = r.get(1)?;
    Ok(Client {
        id: r.get(0)?,
        jwks: jwks.and_then(|j| serde_json::from_str(&j).ok()),
        jwks_url: r.get(2)?,
        scope: r.get(3)?,
        role: r.get(4)?,
        organization: r.get(5)?,
        patient: r.get(6)?,
        tls_thumbprint: r.get(7)?,
        disabled: r.get::<_, i64>(8)? != 0,
        redirect_uris: r.get::<_, String>(9)?.split(' ').filter(|u| !u.is_empty()).map(str::to_string).collect(),
        institution: r.get(10)?,
    })
}

/// A 医療機関コード: 10 ASCII digits.
pub fn is_institution_code(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Registries made before institutions existed gain the column.
fn add_institution_column(conn: &Connection) -> Result<(), AuthError> {
    let has: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('client') WHERE name = 'institution'")
        .and_then(|mut s| s.exists([]))
        .map_err(db)?;
    if !has {
        conn.execute_batch("ALTER TABLE client ADD COLUMN institution TEXT").map_err(db)?;
    }
    Ok(())
}

/// The `jti`s of accepted assertions are kept in the registry file, so a restart does not
/// open a window for replays.
impl JtiLog for Registry {
    fn first_use(&self, client_id: &str, jti: &str, exp: u64, now: u64) -> bool {
        let conn = self.conn.lock();
        let _ =
            conn.prepare_cached("DELETE FROM assertion_jti WHERE exp <= ?1").and_then(|mut s| s.execute([now as i64]));
        let inserted = conn
            .prepare_cached("INSERT OR IGNORE INTO assertion_jti (client, jti, exp) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![client_id, jti, exp as i64]));
        matches!(inserted, Ok(1))
    }
}

pub(crate) fn db(e: rusqlite::Error) -> AuthError {
    AuthError::Registry(e.to_string())
}
