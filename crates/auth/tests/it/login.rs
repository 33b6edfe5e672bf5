//! The authorize request, the authorization codes and the login page: a well-formed request
//! parses and its code redeems once with the right verifier; each deviation is refused.

use tsunagu_auth::{
    challenge_s256, html_escape, login_error_message, login_page, AuthError, AuthorizeRequest, CodeStore, UserInfo,
    CODE_LIFETIME_SECS, MAX_PENDING_CODES,
};

const BASE: &str = "https://fhir.example.jp/r4";
const NOW: u64 = 1_800_000_000;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "https://app.example.jp/callback";

fn pairs(over: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let challenge = challenge_s256(VERIFIER);
    let mut p: Vec<(&str, Option<&str>)> = vec![
        ("response_type", Some("code")),
        ("client_id", Some("app")),
        ("redirect_uri", Some(REDIRECT)),
        ("scope", Some("openid fhirUser patient/Observation.rs launch/patient")),
        ("state", Some("xyz")),
        ("aud", Some(BASE)),
        ("code_challenge", Some(challenge.as_str())),
        ("code_challenge_method", Some("S256")),
    ];
    for (k, v) in over {
        match p.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = *v,
            None => p.push((k, *v)),
        }
    }
    p.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string()))).collect()
}

fn request() -> AuthorizeRequest {
    AuthorizeRequest::parse(&pairs(&[]), BASE).unwrap()
}

fn user() -> UserInfo {
    UserInfo {
        id: "yamada".into(),
        role: "patient".into(),
        fhir_user: Some("Patient/9".into()),
        organization: None,
        scope: "patient/*.rs openid fhirUser launch/patient".into(),
        disabled: false,
        locked_until: None,
    }
}

fn refused(over: &[(&str, Option<&str>)]) -> AuthError {
    AuthorizeRequest::parse(&pairs(over), BASE).expect_err(&format!("{over:?} was accepted"))
}

#[test]
fn a_well_formed_request_parses() {
    let r = request();
    assert_eq!(r.client_id, "app");
    assert_eq!(r.redirect_uri, REDIRECT);
    assert_eq!(r.code_challenge_method, "S256");
    assert_eq!(r.nonce, None);
    // A trailing slash on either side is the same server; extra fields (the login form's) are ignored.
    let with = pairs(&[("aud", Some("https://fhir.example.jp/r4/")), ("nonce", Some("n-1")), ("user_id", Some("u"))]);
    let r = AuthorizeRequest::parse(&with, BASE).unwrap();
    assert_eq!(r.nonce.as_deref(), Some("n-1"));
}

#[test]
fn deviations_from_smart_code_flow_are_refused() {
    for missing in [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "aud",
        "code_challenge",
        "code_challenge_method",
    ] {
        assert!(matches!(refused(&[(missing, None)]), AuthError::InvalidRequest(_)), "without {missing}");
        assert!(matches!(refused(&[(missing, Some(""))]), AuthError::InvalidRequest(_)), "empty {missing}");
    }
    for over in [
        ("response_type", "token"),
        ("code_challenge_method", "plain"),
        ("code_challenge_method", "s256"),
        ("code_challenge", "short"),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"),
        ("aud", "https://other.example.jp/r4"),
        ("redirect_uri", "https://app.example.jp/callback#frag"),
    ] {
        assert!(matches!(refused(&[(over.0, Some(over.1))]), AuthError::InvalidRequest(_)), "{over:?}");
    }
    // plain with its challenge being the verifier itself.
    let plain = refused(&[("code_challenge_method", Some("plain")), ("code_challenge", Some(VERIFIER))]);
    assert!(matches!(plain, AuthError::InvalidRequest(m) if m.contains("S256")));
    assert!(matches!(refused(&[("scope", Some("patient/*.rx"))]), AuthError::InvalidScope { .. }));
    let mut twice = pairs(&[]);
    twice.push(("state".into(), "other".into()));
    assert!(matches!(AuthorizeRequest::parse(&twice, BASE), Err(AuthError::InvalidRequest(_))));
    let long = "x".repeat(4096);
    assert!(matches!(refused(&[("state", Some(long.as_str()))]), AuthError::InvalidRequest(_)));
}

#[test]
fn a_code_redeems_once_with_the_right_verifier() {
    let store = CodeStore::new();
    let req = AuthorizeRequest::parse(&pairs(&[("nonce", Some("n-1"))]), BASE).unwrap();
    let code = store.issue(&req, &user(), "patient/Observation.rs openid", NOW).unwrap();
    assert_eq!(code.len(), 43, "256 bits, base64url");
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let issued = store.redeem(&code, "app", REDIRECT, VERIFIER, NOW + 5).unwrap();
    assert_eq!(issued.user, user());
    assert_eq!(issued.scope, "patient/Observation.rs openid");
    assert_eq!(issued.client_id, "app");
    assert_eq!(issued.nonce.as_deref(), Some("n-1"));
    assert_eq!(issued.issued_at, NOW);
    // Used again: refused, and reported with the grant so its tokens can be revoked.
    let again = store.redeem(&code, "app", REDIRECT, VERIFIER, NOW + 6);
    assert_eq!(again, Err(AuthError::CodeReused { grant_id: issued.grant_id.clone() }));
    let other = store.issue(&req, &user(), "openid", NOW).unwrap();
    assert_ne!(other, code);
    assert_ne!(store.redeem(&other, "app", REDIRECT, VERIFIER, NOW).unwrap().grant_id, issued.grant_id);
}

#[test]
fn a_wrong_verifier_fails_and_spends_the_code() {
    let store = CodeStore::new();
    let code = store.issue(&request(), &user(), "openid", NOW).unwrap();
    let wrong = "x".repeat(43);
    assert!(matches!(store.redeem(&code, "app", REDIRECT, &wrong, NOW), Err(AuthError::InvalidGrant(_))));
    assert!(matches!(store.redeem(&code, "app", REDIRECT, VERIFIER, NOW), Err(AuthError::CodeReused { .. })));
    let code = store.issue(&request(), &user(), "openid", NOW).unwrap();
    assert!(matches!(store.redeem(&code, "app", REDIRECT, "", NOW), Err(AuthError::InvalidGrant(_))));
}

#[test]
fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let store = CodeStore::new();
    let code = store.issue(&request(), &user(), "openid", NOW).unwrap();
    assert!(matches!(store.redeem(&code, "other-app", REDIRECT, VERIFIER, NOW), Err(AuthError::InvalidGrant(_))));
    assert!(matches!(store.redeem(&code, "app", REDIRECT, VERIFIER, NOW), Err(AuthError::CodeReused { .. })));
    let code = store.issue(&request(), &user(), "openid", NOW).unwrap();
    let elsewhere = "https://app.example.jp/callback2";
    assert!(matches!(store.redeem(&code, "app", elsewhere, VERIFIER, NOW), Err(AuthError::InvalidGrant(_))));
}

#[test]
fn a_code_expires_after_a_minute() {
    let store = CodeStore::new();
    let late = store.issue(&request(), &user(), "openid", NOW).unwrap();
    let r = store.redeem(&late, "app", REDIRECT, VERIFIER, NOW + CODE_LIFETIME_SECS);
    assert!(matches!(r, Err(AuthError::InvalidGrant(_))), "{r:?}");
    let in_time = store.issue(&request(), &user(), "openid", NOW).unwrap();
    assert!(store.redeem(&in_time, "app", REDIRECT, VERIFIER, NOW + CODE_LIFETIME_SECS - 1).is_ok());
    assert!(matches!(store.redeem("made-up", "app", REDIRECT, VERIFIER, NOW), Err(AuthError::InvalidGrant(_))));
}

#[test]
fn pending_codes_are_bounded() {
    let store = CodeStore::new();
    let (req, u) = (request(), user());
    for _ in 0..MAX_PENDING_CODES {
        store.issue(&req, &u, "openid", NOW).unwrap();
    }
    assert!(matches!(store.issue(&req, &u, "openid", NOW + 1), Err(AuthError::TemporarilyUnavailable(_))));
    // Once they have expired they make room.
    let code = store.issue(&req, &u, "openid", NOW + CODE_LIFETIME_SECS).unwrap();
    assert_eq!(store.len(), 1);
    assert!(store.redeem(&code, "app", REDIRECT, VERIFIER, NOW + CODE_LIFETIME_SECS).is_ok());
}

#[test]
fn html_escape_neutralises_markup() {
    assert_eq!(
        html_escape(r#"<script>alert("x" & 'y')</script>"#),
        "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
    );
    assert_eq!(html_escape("山田 &amp;"), "山田 &amp;amp;");
}

#[test]
fn the_login_page_escapes_everything_it_shows() {
    let hostile = r#""><script>alert(1)</script>"#;
    let req = AuthorizeRequest::parse(&pairs(&[("state", Some(hostile)), ("nonce", Some("a'b&c"))]), BASE).unwrap();
    for ja in [true, false] {
        let page = login_page(&req, "<img src=x onerror=alert(1)>", Some("<b>bad</b>"), ja);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""), "{page}");
        assert!(page.contains("value=\"a&#39;b&amp;c\""));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        // Self-contained: nothing loaded from elsewhere.
        assert!(!page.contains("src=\"") && !page.contains("href=") && !page.contains("@import"));
        assert!(page.contains("<form method=\"post\""));
        for field in ["user_id", "password", "totp"] {
            assert!(page.contains(&format!("name=\"{field}\"")), "{field}");
        }
        for hidden in ["response_type", "client_id", "redirect_uri", "scope", "state", "aud", "code_challenge"] {
            assert!(page.contains(&format!("type=\"hidden\" name=\"{hidden}\"")), "{hidden}");
        }
        assert_eq!(page.matches("<li>").count(), 4, "one item per scope");
        assert!(page.contains("<li><code>patient/Observation.rs</code>"));
    }
    let ja = login_page(&req, "アプリ", None, true);
    assert!(ja.contains("lang=\"ja\"") && ja.contains("パスワード") && ja.contains("読み取り・検索"));
    assert!(!ja.contains("role=\"alert\""));
    let en = login_page(&req, "App", None, false);
    assert!(en.contains("lang=\"en\"") && en.contains("Password") && en.contains("read, search"));
}

#[test]
fn the_form_posts_back_a_request_that_parses_the_same() {
    let req = AuthorizeRequest::parse(&pairs(&[("nonce", Some("n"))]), BASE).unwrap();
    let page = login_page(&req, "App", None, false);
    // The hidden fields, read back (values here need no unescaping).
    let mut posted: Vec<(String, String)> = page
        .lines()
        .filter_map(|l| l.strip_prefix("<input type=\"hidden\" name=\""))
        .map(|l| {
            let (name, rest) = l.split_once("\" value=\"").unwrap();
            (name.to_string(), rest.trim_end_matches("\">").to_string())
        })
        .collect();
    posted.extend([("user_id".into(), "u".into()), ("password".into(), "p".into()), ("totp".into(), "1".into())]);
    assert_eq!(AuthorizeRequest::parse(&posted, BASE).unwrap(), req);
}

#[test]
fn sign_in_errors_have_messages_in_both_languages() {
    let ja = login_error_message(&AuthError::LoginFailed, true);
    let en = login_error_message(&AuthError::LoginFailed, false);
    assert!(ja.contains("パスワード") && en.contains("password"));
    let locked = AuthError::Locked { until: NOW };
    assert!(login_error_message(&locked, true).contains("15分"));
    assert!(login_error_message(&locked, false).contains("15 minutes"));
}
