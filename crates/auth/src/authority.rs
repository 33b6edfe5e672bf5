//! The built-in authorization server, without HTTP: what the token endpoint answers
//! (`client_credentials` with a client assertion or a registered TLS certificate,
//! `authorization_code` with PKCE), what the login form does, which bearer tokens are
//! good (this server's, and those of trusted external identity providers), and the
//! SMART configuration document. The server crate maps requests to these calls.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::external::ExternalIssuer;
use crate::{
    verify_client_assertion, AccessClaims, AssertionContext, AuthError, AuthorizeRequest, Client, CodeStore, Grant,
    KeyRing, Registry, Role, RoleScopes, ScopeSet, TokenIssuer, UserInfo, UserStore,
};

/// How the authorization server is set up (from the configuration).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Access token lifetime (default 300 s).
    pub token_lifetime_secs: u64,
    /// Role name → scopes replacing the role's defaults.
    pub roles: BTreeMap<String, String>,
    /// Identity providers whose tokens are also accepted.
    pub external: Vec<ExternalIssuer>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { token_lifetime_secs: 300, roles: BTreeMap::new(), external: Vec::new() }
    }
}

pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The authorization server of one FHIR base URL.
pub struct Authority {
    issuer: TokenIssuer,
    registry: Registry,
    roles: RoleScopes,
    codes: CodeStore,
    external: Vec<ExternalIssuer>,
    base: String,
    /// Key sets of clients registered with a JWKS URL.
    fetched_keys: crate::jwks_source::JwksCache,
}

impl Authority {
    /// Opens the keys (`<auth_dir>/keys`) and the registry (`<auth_dir>/registry.sqlite`).
    pub fn open(auth_dir: &Path, base_url: &str, settings: AuthSettings) -> Result<Authority, AuthError> {
        let keys = KeyRing::load_or_create(&auth_dir.join("keys"))?;
        let base = base_url.trim_end_matches('/').to_string();
        Ok(Authority {
            issuer: TokenIssuer::new(keys, &base, settings.token_lifetime_secs),
            registry: Registry::open(auth_dir)?,
            roles: RoleScopes::new(&settings.roles)?,
            codes: CodeStore::new(),
            external: settings.external,
            base,
            fetched_keys: Default::default(),
        })
    }

    /// How key sets registered by URL are fetched (the server's HTTP client); the first
    /// one set stays.
    pub fn set_jwks_fetcher(&self, f: Arc<dyn crate::JwksFetcher>) {
        self.fetched_keys.set_fetcher(f);
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/auth/token", self.base)
    }

    pub fn authorize_endpoint(&self) -> String {
        format!("{}/auth/authorize", self.base)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    pub fn roles(&self) -> &RoleScopes {
        &self.roles
    }

    /// `/.well-known/smart-configuration` (SMART App Launch 2.x).
    pub fn smart_configuration(&self) -> Value {
        json!({
            "issuer": self.base,
            "jwks_uri": format!("{}/auth/jwks", self.base),
            "authorization_endpoint": self.authorize_endpoint(),
            "token_endpoint": self.token_endpoint(),
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "tls_client_auth", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "scopes_supported": ["openid", "fhirUser", "launch/patient", "patient/*.rs", "user/*.cruds",
                                 "system/*.cruds"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "capabilities": ["launch-standalone", "client-public", "client-confidential-asymmetric",
                             "context-standalone-patient", "permission-v2", "permission-v1", "permission-patient",
                             "permission-user", "sso-openid-connect"],
        })
    }

    /// The keys this server's tokens are signed with.
    pub fn jwks(&self) -> Value {
        self.issuer.keys().jwks()
    }

    /// The claims of a bearer token this server (or a trusted provider) issued, still
    /// valid at `now`, whose client and user are not disabled.
    pub fn authenticate(&self, token: &str, now: u64) -> Result<Arc<AccessClaims>, AuthError> {
        let claims = match self.external_issuer_of(token) {
            Some(ext) => Arc::new(ext.verify(token, now, &self.roles)?),
            None => self.issuer.verify_cached(token, now)?,
        };
        let user = (claims.sub != claims.client_id).then_some(claims.sub.as_str());
        if self.registry.disabled_now(&claims.client_id, user) {
            return Err(AuthError::InvalidToken("the client or user has been disabled".into()));
        }
        Ok(claims)
    }

    fn external_issuer_of(&self, token: &str) -> Option<&ExternalIssuer> {
        if self.external.is_empty() {
            return None;
        }
        let iss = crate::external::unverified_issuer(token)?;
        if iss == self.base {
            return None;
        }
        self.external.iter().find(|e| e.issuer == iss)
    }

    /// The token endpoint: a form's pairs in, the token response out. `tls_thumbprint`:
    /// the client certificate the connection presented, if any.
    pub fn token(&self, form: &[(String, String)], tls_thumbprint: Option<&str>, now: u64) -> Result<Value, AuthError> {
        let get = |name: &str| single(form, name);
        match get("grant_type")?.as_deref() {
            Some("client_credentials") => self.client_credentials(form, tls_thumbprint, now),
            Some("authorization_code") => self.authorization_code(form, tls_thumbprint, now),
            Some(other) => Err(AuthError::UnsupportedGrantType(other.chars().take(64).collect())),
            None => Err(AuthError::InvalidRequest("grant_type is missing".into())),
        }
    }

    /// Who the client is: proven by a client assertion (private_key_jwt) or by the TLS
    /// certificate registered for it. `None` for a public client (no credentials).
    fn authenticated_client(
        &self,
        form: &[(String, String)],
        tls_thumbprint: Option<&str>,
        now: u64,
    ) -> Result<Option<Client>, AuthError> {
        let assertion = single(form, "client_assertion")?;
        let claimed = single(form, "client_id")?;
        if let Some(assertion) = assertion {
            if single(form, "client_assertion_type")?.as_deref() != Some(CLIENT_ASSERTION_TYPE) {
                return Err(AuthError::InvalidRequest(format!(
                    "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
                )));
            }
            let id = match claimed {
                Some(id) => id,
                None => crate::external::unverified_claim(&assertion, "iss")
                    .ok_or_else(|| AuthError::InvalidClient("the assertion names no client (iss)".into()))?,
            };
            let client = self.active_client(&id)?;
            let endpoint = self.token_endpoint();
            let verify = |jwks: &Value| {
                let ctx = AssertionContext { client_id: &id, token_endpoint: &endpoint, jwks, now };
                verify_client_assertion(&assertion, &ctx, &self.registry)
            };
            match (&client.jwks, &client.jwks_url) {
                (Some(jwks), _) => verify(jwks)?,
                (None, Some(url)) => {
                    let kept = self.fetched_keys.get(url, now, false)?;
                    match verify(&kept) {
                        // A key the kept set lacks: the client may have rotated its keys.
                        Err(AuthError::InvalidClient(r)) if r.contains("kid") => {
                            verify(&self.fetched_keys.get(url, now, true)?)?
                        }
                        other => other?,
                    }
                }
                (None, None) => return Err(AuthError::InvalidClient("the client has no registered key set".into())),
            }
            return Ok(Some(client));
        }
        if let Some(tp) = tls_thumbprint {
            if let Some(client) = self.registry.client_by_thumbprint(tp)? {
                if claimed.as_ref().is_none_or(|c| *c == client.id) {
                    return Ok(Some(client));
                }
            }
        }
        match claimed {
            Some(id) => {
                let client = self.active_client(&id)?;
                if client.jwks.is_some() || client.jwks_url.is_some() || client.tls_thumbprint.is_some() {
                    return Err(AuthError::InvalidClient("this client must authenticate (private_key_jwt)".into()));
                }
                Ok(None)
            }
            None => Err(AuthError::InvalidClient("no client authentication was given".into())),
        }
    }

    fn active_client(&self, id: &str) -> Result<Client, AuthError> {
        match self.registry.client(id)? {
            Some(c) if !c.disabled => Ok(c),
            Some(_) => Err(AuthError::InvalidClient("the client is disabled".into())),
            None => Err(AuthError::InvalidClient("the client is not registered".into())),
        }
    }

    /// What a client is registered for: its own scopes, or its role's.
    fn registered_scopes(&self, c: &Client) -> Result<ScopeSet, AuthError> {
        if !c.scope.trim().is_empty() {
            return ScopeSet::parse(&c.scope);
        }
        match &c.role {
            Some(r) => Ok(self.roles.of(r.parse::<Role>()?).clone()),
            None => Ok(ScopeSet::default()),
        }
    }

    fn client_credentials(
        &self,
        form: &[(String, String)],
        tls_thumbprint: Option<&str>,
        now: u64,
    ) -> Result<Value, AuthError> {
        let Some(client) = self.authenticated_client(form, tls_thumbprint, now)? else {
            return Err(AuthError::UnauthorizedClient("client_credentials needs client authentication".into()));
        };
        let registered = self.registered_scopes(&client)?;
        let requested = match single(form, "scope")? {
            Some(s) => ScopeSet::parse(&s)?,
            None => registered.clone(),
        };
        if !requested.is_within(&registered) {
            return Err(AuthError::InvalidScope {
                scope: requested.to_string().chars().take(200).collect(),
                reason: "beyond what the client is registered for",
            });
        }
        let grant = Grant {
            subject: client.id.clone(),
            client_id: client.id.clone(),
            scope: requested.to_string(),
            patient: client.patient.clone(),
            organization: client.organization.clone(),
            institution: client.institution.clone(),
            role: client.role.clone(),
        };
        self.token_response(&grant, now)
    }

    fn authorization_code(
        &self,
        form: &[(String, String)],
        tls_thumbprint: Option<&str>,
        now: u64,
    ) -> Result<Value, AuthError> {
        let client = self.authenticated_client(form, tls_thumbprint, now)?;
        let client_id = match (&client, single(form, "client_id")?) {
            (Some(c), _) => c.id.clone(),
            (None, Some(id)) => id,
            (None, None) => return Err(AuthError::InvalidClient("client_id is missing".into())),
        };
        let need =
            |name: &str| single(form, name)?.ok_or_else(|| AuthError::InvalidRequest(format!("{name} is missing")));
        let issued =
            self.codes.redeem(&need("code")?, &client_id, &need("redirect_uri")?, &need("code_verifier")?, now)?;
        let patient = issued.user.fhir_user.as_deref().and_then(|f| f.strip_prefix("Patient/")).map(str::to_string);
        let grant = Grant {
            subject: issued.user.id.clone(),
            client_id,
            scope: issued.scope.clone(),
            patient,
            organization: issued.user.organization.clone(),
            institution: None,
            role: Some(issued.user.role.clone()),
        };
        let mut response = self.token_response(&grant, now)?;
        if let Some(f) = &issued.user.fhir_user {
            response["fhirUser"] = json!(f);
        }
        Ok(response)
    }

    fn token_response(&self, grant: &Grant, now: u64) -> Result<Value, AuthError> {
        let token = self.issuer.issue(grant, now)?;
        let mut r = json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.issuer.lifetime_secs(),
            "scope": grant.scope,
        });
        if let Some(p) = &grant.patient {
            r["patient"] = json!(p);
        }
        Ok(r)
    }

    /// Checks an authorize request (the client is registered, active, and registered this
    /// redirect URI); returns it with the client, for the login page.
    pub fn authorize_request(&self, pairs: &[(String, String)]) -> Result<(AuthorizeRequest, Client), AuthError> {
        let req = AuthorizeRequest::parse(pairs, &self.base)?;
        let client = self.active_client(&req.client_id)?;
        if !client.redirect_uris.contains(&req.redirect_uri) {
            return Err(AuthError::InvalidRequest("redirect_uri is not registered for this client".into()));
        }
        Ok((req, client))
    }

    /// The login form posted: the user signs in with password and TOTP, and the browser is
    /// sent back to the app with a code. Returns the redirect URL.
    pub fn login(&self, pairs: &[(String, String)], now: u64) -> Result<String, AuthError> {
        let (req, client) = self.authorize_request(pairs)?;
        let user_id = single(pairs, "user_id")?.unwrap_or_default();
        let password = single(pairs, "password")?.unwrap_or_default();
        let code = single(pairs, "totp")?.unwrap_or_default();
        let user = self.registry.with_conn(|c| UserStore::authenticate(c, &user_id, &password, &code, now))?;
        let scope = self.user_grant(&req, &client, &user)?;
        let code = self.codes.issue(&req, &user, &scope.to_string(), now)?;
        let sep = if req.redirect_uri.contains('?') { '&' } else { '?' };
        Ok(format!("{}{sep}code={}&state={}", req.redirect_uri, code, crate::totp::percent_encode(&req.state)))
    }

    /// What a user gets: what the app asked for, within the user's own scopes (or the
    /// role's) and within what the app is registered for.
    fn user_grant(&self, req: &AuthorizeRequest, client: &Client, user: &UserInfo) -> Result<ScopeSet, AuthError> {
        let role: Role = user.role.parse()?;
        let role_scopes = self.roles.of(role);
        let user_scopes =
            if user.scope.trim().is_empty() { role_scopes.clone() } else { ScopeSet::parse(&user.scope)? };
        let asked = ScopeSet::parse(&req.scope)?;
        let granted =
            asked.granted_by(&user_scopes).granted_by(role_scopes).granted_by(&self.registered_scopes(client)?);
        if granted.is_empty() {
            return Err(AuthError::InvalidScope { scope: req.scope.clone(), reason: "none of it may be granted" });
        }
        Ok(granted)
    }
}

/// The one value of a form parameter; sent twice is an error (RFC 6749 §3.2).
fn single(form: &[(String, String)], name: &str) -> Result<Option<String>, AuthError> {
    let mut it = form.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.clone());
    if it.next().is_some() {
        return Err(AuthError::InvalidRequest(format!("{name} is given more than once")));
    }
    Ok(first.filter(|v| !v.is_empty()))
}
