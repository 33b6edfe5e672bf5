//! The registry of clients (and, beside them in the same file, users): who may ask for
//! tokens, with which keys and up to which scopes, and the `jti`s of accepted client
//! assertions. It lives in `<data>/auth/registry.sqlite`, written by the operator's CLI
//! and read by the server, so a client disabled from the command line is refused by a
//! running server at its next request (SQLite's `data_version` says when to reread).

use std::collections::HashSet;
use std::path::Path;

use parking_lot::Mutex;
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
    /// Disabled clients and users, reread whenever another connection committed.
    disabled: Mutex<(i64, HashSet<String>)>,
}

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
        crate::users::UserStore::migrate(&conn)?;
        Ok(Registry { conn: Mutex::new(conn), disabled: Mutex::new((-1, HashSet::new())) })
    }

    /// Runs `f` on the registry's connection (for the user store, which shares it).
    pub fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let out = f(&self.conn.lock());
        self.forget_disabled();
        out
    }

    /// `data_version` only moves for other connections' commits; this one's own changes
    /// (a client or user disabled through it) must drop the cached set explicitly.
    fn forget_disabled(&self) {
        self.disabled.lock().0 = -1;
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
        if let Some(bad) = c.redirect_uris.iter().find(|u| u.contains(['#', ' ']) || !u.contains("://")) {
            return Err(AuthError::InvalidClient(format!("'{bad}' is not a redirect URI")));
        }
        let jwks = c.jwks.as_ref().map(|j| j.to_string());
        self.conn
            .lock()
            .execute(
                "INSERT INTO client (id, jwks, jwks_url, scope, role, organization, patient, tls_thumbprint,
                                     redirect_uris, disabled, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
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
                    now as i64
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
                "SELECT id, jwks, jwks_url, scope, role, organization, patient, tls_thumbprint, disabled, redirect_uris
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
                "SELECT id, jwks, jwks_url, scope, role, organization, patient, tls_thumbprint, disabled, redirect_uris
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

    /// Whether tokens of this client or user must be refused now.
    pub fn is_disabled(&self, principal: &str) -> bool {
        self.any_disabled(&[principal])
    }

    /// Whether any of these clients or users is disabled now (one look for a token's
    /// client and subject: this runs on every request).
    pub fn any_disabled(&self, principals: &[&str]) -> bool {
        let conn = self.conn.lock();
        let version: i64 =
            conn.prepare_cached("PRAGMA data_version").and_then(|mut s| s.query_row([], |r| r.get(0))).unwrap_or(-2);
        let mut cached = self.disabled.lock();
        if cached.0 != version {
            match disabled_principals(&conn) {
                Ok(set) => *cached = (version, set),
                // An unreadable registry refuses everyone rather than no one.
                Err(_) => return true,
            }
        }
        principals.iter().any(|p| cached.1.contains(*p))
    }
}

fn disabled_principals(conn: &Connection) -> Result<HashSet<String>, rusqlite::Error> {
    let mut set = HashSet::new();
    for sql in ["SELECT id FROM client WHERE disabled = 1", "SELECT id FROM users WHERE disabled = 1"] {
        let mut stmt = conn.prepare_cached(sql)?;
        for id in stmt.query_map([], |r| r.get::<_, String>(0))? {
            set.insert(id?);
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
    })
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
