//! Fetching a client's key set from the JWKS URL it was registered with (the
//! authorization server asks; this crate is the one that speaks HTTP). Bounded: five
//! seconds, 256 KiB, no redirects.

use std::time::Duration;

use serde_json::Value;
use tsunagu_auth::{AuthError, JwksFetcher};

const MAX_JWKS_BYTES: usize = 256 * 1024;

pub(crate) struct HttpJwks {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl HttpJwks {
    /// `None` outside a Tokio runtime (nothing could run the requests).
    pub(crate) fn new() -> Option<HttpJwks> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        Some(HttpJwks { client, runtime })
    }
}

impl JwksFetcher for HttpJwks {
    /// Called on the blocking pool (token requests run there), so it may wait.
    fn fetch(&self, url: &str) -> Result<Value, AuthError> {
        let bad = |why: String| AuthError::InvalidClient(format!("the client's key set at {url}: {why}"));
        self.runtime.block_on(async {
            let mut r = self.client.get(url).send().await.map_err(|e| bad(e.to_string()))?;
            if !r.status().is_success() {
                return Err(bad(format!("answered {}", r.status())));
            }
            let mut body = Vec::new();
            while let Some(chunk) = r.chunk().await.map_err(|e| bad(e.to_string()))? {
                if body.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Err(bad(format!("larger than {MAX_JWKS_BYTES} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            serde_json::from_slice(&body).map_err(|e| bad(format!("not JSON: {e}")))
        })
    }
}
