//! People who sign in to apps (SMART App Launch, `authorization_code`): their password
//! (Argon2id), their TOTP secret (the second factor the MHLW security guideline asks for),
//! what they may be granted, and the lockout after repeated failures. The accounts live in
//! the registry's SQLite file, on a connection the caller owns; every time is passed in.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{totp, AuthError, Role, ScopeSet};

/// Shorter passwords are refused: length is what makes a password hard to guess.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer ones are refused too (they are not passwords, and hashing them costs).
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Consecutive failures (wrong password, wrong or reused code) that lock an account…
pub const MAX_FAILED_LOGINS: u32 = 5;
/// …for this long; then it gets `MAX_FAILED_LOGINS` more tries.
pub const LOCKOUT_SECS: u64 = 15 * 60;
/// The issuer an authenticator app shows beside the account.
pub const TOTP_ISSUER: &str = "Tsunagu";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id             TEXT PRIMARY KEY,
    password_hash  TEXT NOT NULL,
    totp_secret    TEXT NOT NULL,
    totp_last_step INTEGER,
    role           TEXT NOT NULL,
    fhir_user      TEXT,
    organization   TEXT,
    scope          TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS login_failure (
    user_id      TEXT PRIMARY KEY REFERENCES users (id),
    count        INTEGER NOT NULL,
    locked_until INTEGER
) WITHOUT ROWID;
";

/// A user account, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub id: String,
    /// A platform role name (`doctor`, `nurse`, `patient`, …).
    pub role: String,
    /// The FHIR resource the person is (`Practitioner/123`, `Patient/9`): SMART's `fhirUser`.
    pub fhir_user: Option<String>,
    pub organization: Option<String>,
    /// The most this user may be granted (space-separated SMART scopes).
    pub scope: String,
    pub disabled: bool,
    /// The end of the account's last lock (seconds since the epoch), which may have passed.
    pub locked_until: Option<u64>,
}

/// The user accounts, in the tables `users` and `login_failure` of a caller's connection.
pub struct UserStore;

impl UserStore {
    /// Creates the tables if they do not exist.
    pub fn migrate(conn: &Connection) -> Result<(), AuthError> {
        conn.execute_batch(SCHEMA).map_err(db)
    }

    /// Adds an account; returns the `otpauth://` URI of its new TOTP secret, to show once
    /// (as a QR code) for the person's authenticator app.
    pub fn add_user(
        conn: &Connection,
        id: &str,
        password: &str,
        role: &str,
        fhir_user: Option<&str>,
        organization: Option<&str>,
        scope: &str,
    ) -> Result<String, AuthError> {
        check_user_id(id)?;
        role.parse::<Role>().map_err(|_| invalid(format!("unknown role '{role}'")))?;
        if let Some(f) = fhir_user {
            check_fhir_user(f)?;
        }
        if organization.is_some_and(|o| o.is_empty() || o.len() > 256 || o.chars().any(char::is_control)) {
            return Err(invalid("the organization must be 1 to 256 printable characters"));
        }
        let scope = ScopeSet::parse(scope)?.to_string();
        let hash = hash_password(password)?;
        let secret = new_totp_secret();
        let n = conn
            .execute(
                "INSERT INTO users (id, password_hash, totp_secret, role, fhir_user, organization, scope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                params![id, hash, totp::base32_encode(&secret), role, fhir_user, organization, scope],
            )
            .map_err(db)?;
        if n == 0 {
            return Err(invalid(format!("a user '{id}' already exists")));
        }
        Ok(totp::otpauth_uri(TOTP_ISSUER, id, &secret))
    }

    /// Every account, by id.
    pub fn list_users(conn: &Connection) -> Result<Vec<UserInfo>, AuthError> {
        let mut stmt = conn.prepare(&format!("{SELECT_INFO} ORDER BY u.id")).map_err(db)?;
        let rows = stmt.query_map([], row_to_info).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// The account `id`, if there is one.
    pub fn get_user(conn: &Connection, id: &str) -> Result<Option<UserInfo>, AuthError> {
        conn.query_row(&format!("{SELECT_INFO} WHERE u.id = ?1"), [id], row_to_info).optional().map_err(db)
    }

    /// Refuses the account's sign-ins from now on (the registry also refuses its tokens).
    pub fn disable_user(conn: &Connection, id: &str) -> Result<(), AuthError> {
        update_one(conn, id, "UPDATE users SET disabled = 1 WHERE id = ?1", params![id])
    }

    /// Undoes [`UserStore::disable_user`].
    pub fn enable_user(conn: &Connection, id: &str) -> Result<(), AuthError> {
        update_one(conn, id, "UPDATE users SET disabled = 0 WHERE id = ?1", params![id])
    }

    /// Replaces the account's TOTP secret (a lost phone); returns the new `otpauth://` URI.
    pub fn reset_totp(conn: &Connection, id: &str) -> Result<String, AuthError> {
        let secret = new_totp_secret();
        let sql = "UPDATE users SET totp_secret = ?2, totp_last_step = NULL WHERE id = ?1";
        update_one(conn, id, sql, params![id, totp::base32_encode(&secret)])?;
        Ok(totp::otpauth_uri(TOTP_ISSUER, id, &secret))
    }

    /// Replaces the account's password (it must be as long as a new one).
    pub fn set_password(conn: &Connection, id: &str, password: &str) -> Result<(), AuthError> {
        let hash = hash_password(password)?;
        update_one(conn, id, "UPDATE users SET password_hash = ?2 WHERE id = ?1", params![id, hash])
    }

    /// Ends a lock now and forgets the failures (an administrator's decision).
    pub fn unlock(conn: &Connection, id: &str) -> Result<(), AuthError> {
        UserStore::get_user(conn, id)?.ok_or_else(|| invalid(format!("no user '{id}'")))?;
        conn.execute("DELETE FROM login_failure WHERE user_id = ?1", [id]).map_err(db)?;
        Ok(())
    }

    /// The account, if `password` and the TOTP `code` are right at `now` (seconds since the
    /// epoch) and it is neither locked nor disabled. Unknown user, wrong password, wrong or
    /// reused code and disabled account all give [`AuthError::LoginFailed`], after the same
    /// password hashing work; a locked account gives [`AuthError::Locked`] without looking
    /// at the credentials.
    ///
    /// The failure is counted before the credentials are checked and forgotten when they are
    /// right, so that guesses sent in parallel on other connections are all counted.
    pub fn authenticate(
        conn: &Connection,
        id: &str,
        password: &str,
        code: &str,
        now: u64,
    ) -> Result<UserInfo, AuthError> {
        let now_i = to_i64(now);
        // A lock that has ended starts a fresh count.
        conn.execute(
            "DELETE FROM login_failure WHERE user_id = ?1 AND locked_until IS NOT NULL AND locked_until <= ?2",
            params![id, now_i],
        )
        .map_err(db)?;
        let secrets = conn
            .query_row("SELECT password_hash, totp_secret, totp_last_step FROM users WHERE id = ?1", [id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?))
            })
            .optional()
            .map_err(db)?;
        let (Some((hash, secret, last_step)), Some(info)) = (secrets, UserStore::get_user(conn, id)?) else {
            // As long as a known user's wrong password, so that timing does not tell either.
            verify_password(dummy_hash(), password);
            return Err(AuthError::LoginFailed);
        };
        if let Some(until) = info.locked_until.filter(|u| *u > now) {
            return Err(AuthError::Locked { until });
        }
        let locked_until: Option<i64> = conn
            .query_row(
                "INSERT INTO login_failure (user_id, count, locked_until) VALUES (?1, 1, NULL)
                 ON CONFLICT (user_id) DO UPDATE SET count = count + 1,
                     locked_until = CASE WHEN count + 1 >= ?2 THEN ?3 ELSE NULL END
                 RETURNING locked_until",
                params![id, MAX_FAILED_LOGINS, to_i64(now + LOCKOUT_SECS)],
                |r| r.get(0),
            )
            .map_err(db)?;
        let fail = || match locked_until {
            Some(until) => Err(AuthError::Locked { until: until as u64 }),
            None => Err(AuthError::LoginFailed),
        };
        if !verify_password(&hash, password) || info.disabled {
            return fail();
        }
        let secret =
            totp::base32_decode(&secret).ok_or_else(|| AuthError::Registry("unreadable TOTP secret".into()))?;
        let Some(step) = totp::verify(&secret, code, now, last_step.map(|s| s as u64)) else {
            return fail();
        };
        // Claimed in one statement, so that two sign-ins racing with the same code cannot
        // both have it.
        let claimed = conn
            .execute(
                "UPDATE users SET totp_last_step = ?2 WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                params![id, to_i64(step)],
            )
            .map_err(db)?;
        if claimed == 0 {
            return fail();
        }
        conn.execute("DELETE FROM login_failure WHERE user_id = ?1", [id]).map_err(db)?;
        Ok(UserInfo { locked_until: None, ..info })
    }
}

const SELECT_INFO: &str = "SELECT u.id, u.role, u.fhir_user, u.organization, u.scope, u.disabled, f.locked_until
     FROM users u LEFT JOIN login_failure f ON f.user_id = u.id";

fn row_to_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserInfo> {
    Ok(UserInfo {
        id: r.get(0)?,
        role: r.get(1)?,
        fhir_user: r.get(2)?,
        organization: r.get(3)?,
        scope: r.get(4)?,
        disabled: r.get::<_, i64>(5)? != 0,
        locked_until: r.get::<_, Option<i64>>(6)?.map(|t| t as u64),
    })
}

fn update_one(conn: &Connection, id: &str, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<(), AuthError> {
    if conn.execute(sql, p).map_err(db)? == 0 {
        return Err(invalid(format!("no user '{id}'")));
    }
    Ok(())
}

/// Ids are what people type and what audit records show: ASCII letters, digits and
/// `.`, `_`, `@`, `-` (an e-mail address fits), at most 64.
fn check_user_id(id: &str) -> Result<(), AuthError> {
    let ok = (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid("a user id is 1 to 64 of A-Z a-z 0-9 . _ @ -"))
    }
}

/// SMART's `fhirUser` is a Practitioner, PractitionerRole, Patient, RelatedPerson or Person.
fn check_fhir_user(f: &str) -> Result<(), AuthError> {
    const TYPES: [&str; 5] = ["Practitioner", "PractitionerRole", "Patient", "RelatedPerson", "Person"];
    let ok = f.split_once('/').is_some_and(|(ty, id)| {
        TYPES.contains(&ty)
            && (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("fhirUser must be <{}>/<id>", TYPES.join("|"))))
    }
}

/// An Argon2id PHC string (the argon2 crate's default parameters) with a random salt.
fn hash_password(password: &str) -> Result<String, AuthError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(invalid(format!("the password must be at least {MIN_PASSWORD_CHARS} characters")));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(invalid(format!("the password must be at most {MAX_PASSWORD_CHARS} characters")));
    }
    let salt = SaltString::encode_b64(&totp::random_bytes()[..16]).map_err(|e| invalid(format!("salt: {e}")))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| invalid(format!("hashing the password: {e}")))?;
    Ok(hash.to_string())
}

fn verify_password(phc: &str, password: &str) -> bool {
    // The parameters come from the stored string, so hashes made with older ones still verify.
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password is checked against successfully in practice, made once.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(&[0u8; 16]).expect("16 bytes make a salt");
        Argon2::default().hash_password(&totp::random_bytes(), &salt).expect("the default parameters hash").to_string()
    })
}

/// 160 bits, the HMAC-SHA1 block-size key RFC 4226 recommends.
fn new_totp_secret() -> [u8; 20] {
    let mut s = [0u8; 20];
    s.copy_from_slice(&totp::random_bytes()[..20]);
    s
}

fn to_i64(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn invalid(reason: impl Into<String>) -> AuthError {
    AuthError::InvalidUser(reason.into())
}

fn db(e: rusqlite::Error) -> AuthError {
    AuthError::Registry(e.to_string())
}
