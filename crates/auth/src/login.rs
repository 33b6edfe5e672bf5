//! The authorization endpoint of SMART App Launch 2.x without the HTTP: the authorize
//! request (code flow with PKCE `S256` only, as SMART 2.x requires), the login page a
//! person signs in on, and the one-time authorization codes that the token endpoint
//! trades for tokens. The server checks the client and its redirect URI against the
//! registry, authenticates the user with `UserStore`, and decides the granted scope.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::{pkce, totp, AuthError, Scope, ScopeSet, UserInfo, LOCKOUT_SECS};

/// How long a code may wait to be redeemed (RFC 6749 recommends at most ten minutes; the
/// app redeems it at once).
pub const CODE_LIFETIME_SECS: u64 = 60;
/// Codes waiting to be redeemed at most; past it new ones are refused rather than memory
/// grown (a code only comes from a successful sign-in, so this is never reached in use).
pub const MAX_PENDING_CODES: usize = 10_000;
/// How long a redeemed code is remembered, so that a second redemption is recognised as
/// such (and reported) rather than as an unknown code.
const USED_CODE_MEMORY_SECS: u64 = 600;
/// Longest value of any authorize parameter: bounds the page and the stored code.
const MAX_PARAM_LEN: usize = 2048;

/// The parameters of an authorize request that the server acts on. Unknown parameters are
/// ignored (OAuth), so the login form's POST body parses with [`AuthorizeRequest::parse`]
/// too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// Always `code`.
    pub response_type: String,
    pub client_id: String,
    /// Must be one the client registered (the server checks, with the registry).
    pub redirect_uri: String,
    /// Space-separated SMART scopes, as asked (already checked to parse).
    pub scope: String,
    pub state: String,
    /// The FHIR base URL the app wants tokens for: this server's.
    pub aud: String,
    pub code_challenge: String,
    /// Always `S256`.
    pub code_challenge_method: String,
    /// OpenID Connect's `nonce`, echoed in the ID token if one is issued.
    pub nonce: Option<String>,
}

impl AuthorizeRequest {
    /// Reads the query (or form) pairs of an authorize request for the server whose FHIR base
    /// URL is `fhir_base`. Refused: a missing, empty, repeated or over-long parameter, a
    /// `response_type` other than `code`, a PKCE method other than `S256` (`plain` included),
    /// a challenge that is not an `S256` challenge, scopes that do not parse, a redirect URI
    /// with a fragment, and an `aud` that is not this server.
    pub fn parse(pairs: &[(String, String)], fhir_base: &str) -> Result<AuthorizeRequest, AuthError> {
        const NAMES: [&str; 9] = [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "aud",
            "code_challenge",
            "code_challenge_method",
            "nonce",
        ];
        let bad = |reason: String| AuthError::InvalidRequest(reason);
        let mut found: HashMap<&str, &str> = HashMap::new();
        for (k, v) in pairs {
            let Some(name) = NAMES.iter().find(|n| **n == k) else { continue };
            // RFC 6749 §3.1: a parameter must not be sent twice (which one would count?).
            if found.insert(name, v).is_some() {
                return Err(bad(format!("{name} is given more than once")));
            }
            if v.is_empty() || v.len() > MAX_PARAM_LEN {
                return Err(bad(format!("{name} must be 1 to {MAX_PARAM_LEN} characters")));
            }
        }
        let get = |name: &str| found.get(name).map(|v| v.to_string()).ok_or_else(|| bad(format!("{name} is missing")));
        let req = AuthorizeRequest {
            response_type: get("response_type")?,
            client_id: get("client_id")?,
            redirect_uri: get("redirect_uri")?,
            scope: get("scope")?,
            state: get("state")?,
            aud: get("aud")?,
            code_challenge: get("code_challenge")?,
            code_challenge_method: get("code_challenge_method")?,
            nonce: found.get("nonce").map(|v| v.to_string()),
        };
        if req.response_type != "code" {
            return Err(bad("response_type must be code".into()));
        }
        if req.code_challenge_method != "S256" {
            return Err(bad("code_challenge_method must be S256 (plain is not accepted)".into()));
        }
        // An S256 challenge is base64url of 32 bytes: 43 characters, no padding.
        let c = req.code_challenge.as_bytes();
        if c.len() != 43 || !c.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
            return Err(bad("code_challenge must be base64url (no padding) of a SHA-256".into()));
        }
        if req.redirect_uri.contains('#') {
            return Err(bad("redirect_uri must not have a fragment".into()));
        }
        if req.aud.trim_end_matches('/') != fhir_base.trim_end_matches('/') {
            return Err(bad("aud is not this server's FHIR base URL".into()));
        }
        ScopeSet::parse(&req.scope)?;
        Ok(req)
    }

    /// The pairs the login form carries along as hidden fields.
    fn fields(&self) -> Vec<(&'static str, &str)> {
        let mut f = vec![
            ("response_type", self.response_type.as_str()),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("aud", &self.aud),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ];
        if let Some(n) = &self.nonce {
            f.push(("nonce", n));
        }
        f
    }
}

/// What a redeemed code was issued for: the token endpoint issues tokens from this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    /// Names this grant: the server records it with the tokens it issues, and revokes them
    /// when [`AuthError::CodeReused`] names it.
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub user: UserInfo,
    /// The scope granted (space-separated).
    pub scope: String,
    pub nonce: Option<String>,
    pub issued_at: u64,
}

struct Pending {
    issued: IssuedCode,
    code_challenge: String,
    used: bool,
}

/// Authorization codes waiting to be redeemed, in memory (a restart only costs the few
/// people signing in at that moment a retry). Codes are kept by their SHA-256, so neither a
/// memory dump nor a lookup's timing gives one away.
#[derive(Default)]
pub struct CodeStore {
    codes: Mutex<HashMap<[u8; 32], Pending>>,
}

impl CodeStore {
    pub fn new() -> CodeStore {
        CodeStore::default()
    }

    /// A new code (256 random bits, base64url) for `user`, who signed in at `now` and was
    /// granted `scope` (the server's decision: what was asked, within what the client and
    /// the user may have), bound to the request's client, redirect URI and PKCE challenge.
    pub fn issue(&self, req: &AuthorizeRequest, user: &UserInfo, scope: &str, now: u64) -> Result<String, AuthError> {
        let code = URL_SAFE_NO_PAD.encode(totp::random_bytes());
        let pending = Pending {
            issued: IssuedCode {
                grant_id: uuid::Uuid::new_v4().to_string(),
                client_id: req.client_id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                user: user.clone(),
                scope: scope.to_string(),
                nonce: req.nonce.clone(),
                issued_at: now,
            },
            code_challenge: req.code_challenge.clone(),
            used: false,
        };
        let mut codes = self.codes.lock();
        if codes.len() >= MAX_PENDING_CODES {
            // Expired and long-redeemed codes go first; then the memory of redeemed ones.
            codes.retain(|_, p| {
                let age = now.saturating_sub(p.issued.issued_at);
                if p.used {
                    age < USED_CODE_MEMORY_SECS
                } else {
                    age < CODE_LIFETIME_SECS
                }
            });
            if codes.len() >= MAX_PENDING_CODES {
                codes.retain(|_, p| !p.used);
            }
            if codes.len() >= MAX_PENDING_CODES {
                return Err(AuthError::TemporarilyUnavailable("too many sign-ins waiting; try again shortly".into()));
            }
        }
        codes.insert(digest(&code), pending);
        Ok(code)
    }

    /// What `code` was issued for, if it was issued to `client_id` for `redirect_uri`, is
    /// younger than [`CODE_LIFETIME_SECS`] at `now`, was never presented before, and
    /// `code_verifier` is the verifier of its PKCE challenge. A code is spent by its first
    /// presentation, right or wrong; a second gives [`AuthError::CodeReused`].
    pub fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: &str,
        now: u64,
    ) -> Result<IssuedCode, AuthError> {
        let bad = |reason: &str| AuthError::InvalidGrant(reason.to_string());
        let key = digest(code);
        let mut codes = self.codes.lock();
        let Some(p) = codes.get_mut(&key) else {
            return Err(bad("unknown or expired authorization code"));
        };
        if p.used {
            return Err(AuthError::CodeReused { grant_id: p.issued.grant_id.clone() });
        }
        if now >= p.issued.issued_at + CODE_LIFETIME_SECS {
            codes.remove(&key);
            return Err(bad("the authorization code has expired"));
        }
        p.used = true;
        if p.issued.client_id != client_id {
            return Err(bad("the authorization code was issued to another client"));
        }
        if p.issued.redirect_uri != redirect_uri {
            return Err(bad("redirect_uri differs from the authorization request's"));
        }
        if !pkce::verify_s256(code_verifier, &p.code_challenge) {
            return Err(bad("code_verifier does not match the code_challenge"));
        }
        Ok(p.issued.clone())
    }

    /// Codes held (waiting, and redeemed ones still remembered).
    pub fn len(&self) -> usize {
        self.codes.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn digest(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// `s` safe inside HTML text and double- or single-quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the login page says for a sign-in error, in Japanese or English.
pub fn login_error_message(err: &AuthError, lang_ja: bool) -> String {
    let minutes = LOCKOUT_SECS / 60;
    match (err, lang_ja) {
        (AuthError::LoginFailed, true) => {
            "ユーザーID、パスワード、確認コードのいずれかが違うか、このアカウントは使用できません。".into()
        }
        (AuthError::LoginFailed, false) => "The user ID, password or code is wrong, or this account cannot be used.".into(),
        (AuthError::Locked { .. }, true) => format!(
            "ログインの失敗が続いたため、このアカウントは{minutes}分間ロックされています。時間をおいて再度お試しいただくか、管理者に連絡してください。"
        ),
        (AuthError::Locked { .. }, false) => format!(
            "After repeated failed sign-ins this account is locked for {minutes} minutes. Try again later or contact your administrator."
        ),
        (_, true) => "ログインできませんでした。もう一度お試しください。".into(),
        (_, false) => "Sign-in failed. Please try again.".into(),
    }
}

/// The login page for an authorize request: a self-contained HTML document (no external
/// resources, no script) with a form that POSTs back to the page's own URL the fields
/// `user_id`, `password` and `totp`, and the request's parameters as hidden fields. Every
/// interpolated value is escaped. The server should send it with a CSP that forbids
/// framing (`frame-ancestors 'none'`) and scripts, and allows this inline style.
pub fn login_page(req: &AuthorizeRequest, client_name: &str, error: Option<&str>, lang_ja: bool) -> String {
    let t = |ja: &'static str, en: &'static str| if lang_ja { ja } else { en };
    let client = html_escape(client_name);
    let mut page = String::with_capacity(4096);
    page.push_str("<!DOCTYPE html>\n");
    page.push_str(&format!("<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n", t("ja", "en")));
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    page.push_str(&format!("<title>{}</title>\n", t("ログイン — Tsunagu", "Sign in — Tsunagu")));
    page.push_str(
        "<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}\
         label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;box-sizing:border-box}\
         button{margin-top:1.5rem;padding:.6rem 1.2rem}.error{color:#b00020}code{font-size:.85em}</style>\n",
    );
    page.push_str("</head>\n<body>\n");
    page.push_str(&format!(
        "<h1>{}</h1>\n",
        if lang_ja {
            format!("{client} がアクセスを求めています")
        } else {
            format!("{client} is asking for access")
        }
    ));
    if let Some(e) = error {
        page.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>\n", html_escape(e)));
    }
    page.push_str(&format!("<p>{}</p>\n<ul>\n", t("許可を求められている範囲:", "It asks for:")));
    for s in req.scope.split(' ').filter(|s| !s.is_empty()) {
        let what = s.parse::<Scope>().map(|sc| describe(&sc, lang_ja)).unwrap_or_default();
        page.push_str(&format!("<li><code>{}</code> {}</li>\n", html_escape(s), html_escape(&what)));
    }
    page.push_str("</ul>\n<form method=\"post\">\n");
    for (name, value) in req.fields() {
        page.push_str(&format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n", html_escape(value)));
    }
    let fields = [
        ("user_id", t("ユーザーID", "User ID"), "text", "autocomplete=\"username\" autocapitalize=\"none\""),
        ("password", t("パスワード", "Password"), "password", "autocomplete=\"current-password\""),
        (
            "totp",
            t("確認コード（認証アプリの6桁）", "Code (6 digits from your authenticator app)"),
            "text",
            "autocomplete=\"one-time-code\" inputmode=\"numeric\" pattern=\"[0-9]{6}\" maxlength=\"6\"",
        ),
    ];
    for (name, label, ty, extra) in fields {
        page.push_str(&format!(
            "<label for=\"{name}\">{label}</label>\n<input id=\"{name}\" name=\"{name}\" type=\"{ty}\" {extra} required>\n"
        ));
    }
    page.push_str(&format!("<button type=\"submit\">{}</button>\n", t("ログインして許可", "Sign in and allow")));
    page.push_str("</form>\n</body>\n</html>\n");
    page
}

/// A scope in words, for the person deciding whether to allow it.
fn describe(scope: &Scope, ja: bool) -> String {
    let t = |j: &'static str, e: &'static str| if ja { j } else { e };
    match scope {
        Scope::Other(o) => match o.as_str() {
            "openid" | "profile" => t("— あなたが誰か", "— who you are"),
            "fhirUser" => t("— あなたの利用者情報（FHIR）", "— your user record (FHIR)"),
            "launch" => t("— 起動元の文脈", "— the launch context"),
            "launch/patient" => t("— 患者の選択", "— choosing a patient"),
            "launch/encounter" => t("— 受診の選択", "— choosing an encounter"),
            "offline_access" => t("— ログアウト後も続くアクセス", "— access that lasts after you sign out"),
            "online_access" => t("— ログイン中のアクセス", "— access while you are signed in"),
            _ => "",
        }
        .to_string(),
        Scope::Resource(r) => {
            use crate::{Context, Permission};
            let ty = r.resource_type.as_deref().unwrap_or(t("すべての種類", "all types"));
            let ctx = match r.context {
                Context::Patient => t("一人の患者の", "one patient's"),
                Context::User => t("あなたが見られる範囲の", "what you can see of"),
                Context::System => t("すべての", "all"),
            };
            let perms: Vec<&str> = r
                .permissions
                .iter()
                .map(|p| match p {
                    Permission::Create => t("作成", "create"),
                    Permission::Read => t("読み取り", "read"),
                    Permission::Update => t("更新", "update"),
                    Permission::Delete => t("削除", "delete"),
                    Permission::Search => t("検索", "search"),
                })
                .collect();
            let limited = if r.restriction.is_empty() { "" } else { t("（条件付き）", " (restricted)") };
            if ja {
                format!("— {ctx}{ty}: {}{limited}", perms.join("・"))
            } else {
                format!("— {ctx} {ty}: {}{limited}", perms.join(", "))
            }
        }
    }
}
