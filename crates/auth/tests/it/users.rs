//! User accounts: a right password with a fresh TOTP code signs in; each way of getting it
//! wrong is refused, without telling a guesser which part was wrong, and five wrong tries
//! lock the account for fifteen minutes.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use tsunagu_auth::{
    base32_decode, totp_code_at, AuthError, UserStore, LOCKOUT_SECS, MAX_FAILED_LOGINS, TOTP_STEP_SECS,
};

const NOW: u64 = 1_800_000_000;
const PASSWORD: &str = "correct horse battery";

fn db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    UserStore::migrate(&conn).unwrap();
    conn
}

/// Adds `id` as a doctor; returns its TOTP secret, read back from the otpauth URI.
fn add(conn: &Connection, id: &str) -> Vec<u8> {
    let uri = UserStore::add_user(
        conn,
        id,
        PASSWORD,
        "doctor",
        Some("Practitioner/123"),
        Some("Organization/7"),
        "openid fhirUser user/*.rs",
    )
    .unwrap();
    secret_of(&uri)
}

fn secret_of(uri: &str) -> Vec<u8> {
    let secret = uri.split(['?', '&']).find_map(|p| p.strip_prefix("secret=")).expect("a secret parameter");
    base32_decode(secret).expect("base32")
}

fn code(secret: &[u8], now: u64) -> String {
    format!("{:06}", totp_code_at(secret, now / TOTP_STEP_SECS))
}

/// A code that is not the one of `now` nor of a step either side.
fn wrong_code(secret: &[u8], now: u64) -> String {
    let near: Vec<String> = (0..3).map(|i| code(secret, now - TOTP_STEP_SECS + i * TOTP_STEP_SECS)).collect();
    (0..).map(|n| format!("{n:06}")).find(|c| !near.contains(c)).unwrap()
}

#[test]
fn the_right_password_and_code_sign_in() {
    let conn = db();
    let uri =
        UserStore::add_user(&conn, "yamada", PASSWORD, "doctor", Some("Practitioner/123"), None, "user/*.rs").unwrap();
    assert!(uri.starts_with("otpauth://totp/Tsunagu:yamada?secret="), "{uri}");
    assert!(uri.contains("&issuer=Tsunagu") && uri.contains("&digits=6") && uri.contains("&period=30"), "{uri}");
    let secret = secret_of(&uri);
    assert_eq!(secret.len(), 20);
    let user = UserStore::authenticate(&conn, "yamada", PASSWORD, &code(&secret, NOW), NOW).unwrap();
    assert_eq!(user.id, "yamada");
    assert_eq!(user.role, "doctor");
    assert_eq!(user.fhir_user.as_deref(), Some("Practitioner/123"));
    assert_eq!(user.scope, "user/*.rs");
    assert!(!user.disabled);
    assert_eq!(user.locked_until, None);
    // A code from the step before or after still works (clock drift), once.
    let next = NOW + TOTP_STEP_SECS;
    assert!(UserStore::authenticate(&conn, "yamada", PASSWORD, &code(&secret, next), NOW).is_ok());
}

#[test]
fn a_wrong_or_late_code_is_refused() {
    let conn = db();
    let secret = add(&conn, "sato");
    let wrong = wrong_code(&secret, NOW);
    assert_eq!(UserStore::authenticate(&conn, "sato", PASSWORD, &wrong, NOW), Err(AuthError::LoginFailed));
    let stale = code(&secret, NOW - 2 * TOTP_STEP_SECS);
    assert_eq!(UserStore::authenticate(&conn, "sato", PASSWORD, &stale, NOW), Err(AuthError::LoginFailed));
    assert_eq!(UserStore::authenticate(&conn, "sato", PASSWORD, "", NOW), Err(AuthError::LoginFailed));
    assert!(UserStore::authenticate(&conn, "sato", PASSWORD, &code(&secret, NOW), NOW).is_ok());
}

#[test]
fn a_code_is_accepted_once() {
    let conn = db();
    let secret = add(&conn, "suzuki");
    let c = code(&secret, NOW);
    assert!(UserStore::authenticate(&conn, "suzuki", PASSWORD, &c, NOW).is_ok());
    assert_eq!(UserStore::authenticate(&conn, "suzuki", PASSWORD, &c, NOW + 5), Err(AuthError::LoginFailed));
    // Nor an older one, though still within the accepted window.
    let previous = code(&secret, NOW - TOTP_STEP_SECS);
    if previous != c {
        assert_eq!(UserStore::authenticate(&conn, "suzuki", PASSWORD, &previous, NOW), Err(AuthError::LoginFailed));
    }
    let later = NOW + TOTP_STEP_SECS;
    assert!(UserStore::authenticate(&conn, "suzuki", PASSWORD, &code(&secret, later), later).is_ok());
}

#[test]
fn five_failures_lock_the_account_for_fifteen_minutes() {
    assert_eq!((MAX_FAILED_LOGINS, LOCKOUT_SECS), (5, 900));
    let conn = db();
    let secret = add(&conn, "tanaka");
    for i in 1..MAX_FAILED_LOGINS {
        let r = UserStore::authenticate(&conn, "tanaka", "wrong password!", &code(&secret, NOW), NOW + u64::from(i));
        assert_eq!(r, Err(AuthError::LoginFailed), "failure {i}");
    }
    let last = NOW + u64::from(MAX_FAILED_LOGINS);
    let until = last + LOCKOUT_SECS;
    let r = UserStore::authenticate(&conn, "tanaka", "wrong password!", &code(&secret, last), last);
    assert_eq!(r, Err(AuthError::Locked { until }));
    // Locked: the right credentials and wrong ones get the same answer.
    for t in [last + 1, until - 1] {
        let right = UserStore::authenticate(&conn, "tanaka", PASSWORD, &code(&secret, t), t);
        let wrong = UserStore::authenticate(&conn, "tanaka", "wrong password!", &code(&secret, t), t);
        assert_eq!(right, Err(AuthError::Locked { until }));
        assert_eq!(wrong, right);
    }
    let listed = UserStore::list_users(&conn).unwrap();
    assert_eq!(listed[0].locked_until, Some(until));
    // The lock ends by itself.
    let user = UserStore::authenticate(&conn, "tanaka", PASSWORD, &code(&secret, until), until).unwrap();
    assert_eq!(user.locked_until, None);
    assert_eq!(UserStore::get_user(&conn, "tanaka").unwrap().unwrap().locked_until, None);
}

#[test]
fn wrong_codes_count_towards_the_lock_and_a_success_resets_the_count() {
    let conn = db();
    let secret = add(&conn, "ito");
    let wrong = wrong_code(&secret, NOW);
    let fail = |t: u64| UserStore::authenticate(&conn, "ito", PASSWORD, &wrong, t);
    for i in 0..MAX_FAILED_LOGINS - 1 {
        assert_eq!(fail(NOW + u64::from(i)), Err(AuthError::LoginFailed));
    }
    assert!(UserStore::authenticate(&conn, "ito", PASSWORD, &code(&secret, NOW), NOW + 10).is_ok());
    let t = NOW + 100;
    let wrong = wrong_code(&secret, t);
    let fail = |t: u64| UserStore::authenticate(&conn, "ito", PASSWORD, &wrong, t);
    for _ in 0..MAX_FAILED_LOGINS - 1 {
        assert_eq!(fail(t), Err(AuthError::LoginFailed), "the count started again");
    }
    assert_eq!(fail(t), Err(AuthError::Locked { until: t + LOCKOUT_SECS }));
    // An administrator can end a lock.
    UserStore::unlock(&conn, "ito").unwrap();
    assert!(UserStore::authenticate(&conn, "ito", PASSWORD, &code(&secret, t), t).is_ok());
}

#[test]
fn a_disabled_user_is_refused_like_a_wrong_password() {
    let conn = db();
    let secret = add(&conn, "kato");
    UserStore::disable_user(&conn, "kato").unwrap();
    assert_eq!(UserStore::authenticate(&conn, "kato", PASSWORD, &code(&secret, NOW), NOW), Err(AuthError::LoginFailed));
    assert!(UserStore::list_users(&conn).unwrap()[0].disabled);
    UserStore::enable_user(&conn, "kato").unwrap();
    let t = NOW + TOTP_STEP_SECS;
    assert!(UserStore::authenticate(&conn, "kato", PASSWORD, &code(&secret, t), t).is_ok());
    assert!(matches!(UserStore::disable_user(&conn, "nobody"), Err(AuthError::InvalidUser(_))));
}

#[test]
fn an_unknown_user_gets_the_same_error_in_comparable_time() {
    let conn = db();
    let secret = add(&conn, "kobayashi");
    let c = code(&secret, NOW);
    let time = |id: &str| {
        let start = Instant::now();
        let r = UserStore::authenticate(&conn, id, "wrong password!", &c, NOW);
        (r, start.elapsed())
    };
    // Warm the dummy hash (made once per process).
    let _ = time("nobody");
    let mut unknown = Duration::MAX;
    let mut wrong = Duration::MAX;
    for _ in 0..3 {
        let (r, d) = time("nobody");
        assert_eq!(r, Err(AuthError::LoginFailed));
        unknown = unknown.min(d);
        let (r, d) = time("kobayashi");
        assert_eq!(r, Err(AuthError::LoginFailed));
        wrong = wrong.min(d);
    }
    // Both are dominated by one Argon2id hash; a lookup alone would be ~1000× faster.
    assert!(unknown * 4 > wrong && wrong * 4 > unknown, "unknown {unknown:?}, wrong password {wrong:?}");
}

#[test]
fn short_passwords_are_refused() {
    let conn = db();
    let short = UserStore::add_user(&conn, "a", "elevenchars", "nurse", None, None, "user/*.rs");
    assert!(matches!(short, Err(AuthError::InvalidUser(_))), "{short:?}");
    // Characters count, not bytes.
    let ja_short = UserStore::add_user(&conn, "b", "つなぐつなぐつなぐつなぐ", "nurse", None, None, "user/*.rs");
    assert!(ja_short.is_ok(), "12 characters: {ja_short:?}");
    let ja_short = UserStore::add_user(&conn, "c", "つなぐつなぐつなぐつな", "nurse", None, None, "user/*.rs");
    assert!(matches!(ja_short, Err(AuthError::InvalidUser(_))));
    assert!(UserStore::add_user(&conn, "d", "twelve chars", "nurse", None, None, "user/*.rs").is_ok());
    assert!(matches!(UserStore::set_password(&conn, "d", "too short"), Err(AuthError::InvalidUser(_))));
    assert!(UserStore::list_users(&conn).unwrap().iter().all(|u| u.id != "a" && u.id != "c"));
}

#[test]
fn a_new_password_replaces_the_old() {
    let conn = db();
    let secret = add(&conn, "watanabe");
    UserStore::set_password(&conn, "watanabe", "a brand new passphrase").unwrap();
    let old = UserStore::authenticate(&conn, "watanabe", PASSWORD, &code(&secret, NOW), NOW);
    assert_eq!(old, Err(AuthError::LoginFailed));
    assert!(UserStore::authenticate(&conn, "watanabe", "a brand new passphrase", &code(&secret, NOW), NOW).is_ok());
    assert!(matches!(UserStore::set_password(&conn, "nobody", PASSWORD), Err(AuthError::InvalidUser(_))));
}

#[test]
fn a_reset_totp_secret_replaces_the_old() {
    let conn = db();
    let old = add(&conn, "yamamoto");
    let new = secret_of(&UserStore::reset_totp(&conn, "yamamoto").unwrap());
    assert_ne!(old, new);
    let old_code = code(&old, NOW);
    if old_code != code(&new, NOW) {
        assert_eq!(UserStore::authenticate(&conn, "yamamoto", PASSWORD, &old_code, NOW), Err(AuthError::LoginFailed));
    }
    assert!(UserStore::authenticate(&conn, "yamamoto", PASSWORD, &code(&new, NOW), NOW).is_ok());
}

#[test]
fn accounts_are_checked_when_added() {
    let conn = db();
    add(&conn, "nakamura");
    let try_add = |id: &str, role: &str, fhir_user: Option<&str>, scope: &str| {
        UserStore::add_user(&conn, id, PASSWORD, role, fhir_user, None, scope)
    };
    assert!(matches!(try_add("nakamura", "doctor", None, "user/*.rs"), Err(AuthError::InvalidUser(_))), "duplicate");
    assert!(matches!(try_add("x y", "doctor", None, "user/*.rs"), Err(AuthError::InvalidUser(_))));
    assert!(matches!(try_add("", "doctor", None, "user/*.rs"), Err(AuthError::InvalidUser(_))));
    assert!(matches!(try_add("x", "surgeon", None, "user/*.rs"), Err(AuthError::InvalidUser(_))));
    assert!(matches!(try_add("x", "doctor", Some("Organization/1"), "user/*.rs"), Err(AuthError::InvalidUser(_))));
    assert!(matches!(try_add("x", "doctor", Some("Practitioner/"), "user/*.rs"), Err(AuthError::InvalidUser(_))));
    assert!(matches!(try_add("x", "doctor", None, "user/*.rx"), Err(AuthError::InvalidScope { .. })));
    assert!(try_add("x", "patient", Some("Patient/9"), "patient/*.rs").is_ok());
    let ids: Vec<String> = UserStore::list_users(&conn).unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(ids, ["nakamura", "x"]);
}

#[test]
fn accounts_persist_in_the_shared_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.sqlite");
    let secret = {
        let conn = Connection::open(&path).unwrap();
        UserStore::migrate(&conn).unwrap();
        add(&conn, "kimura")
    };
    let conn = Connection::open(&path).unwrap();
    UserStore::migrate(&conn).unwrap();
    let user = UserStore::authenticate(&conn, "kimura", PASSWORD, &code(&secret, NOW), NOW).unwrap();
    assert_eq!(user.organization.as_deref(), Some("Organization/7"));
    // Only a hash of the password is kept.
    let stored: String = conn.query_row("SELECT password_hash FROM users", [], |r| r.get(0)).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
}
