//! A real server on an ephemeral loopback port with a throwaway data directory.

#![allow(dead_code)]

use std::sync::Arc;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// A server whose configuration `tune` adjusts (its base URL is set already).
pub async fn start_with(tune: impl FnOnce(&mut tsunagu_server::ServerConfig)) -> TestServer {
    start_checked(tune, Arc::new(tsunagu_server::StructureCheck::default())).await
}

/// A server whose writes pass `check` (e.g. a `ProfileCheck` with required profiles).
pub async fn start_checked(
    tune: impl FnOnce(&mut tsunagu_server::ServerConfig),
    check: Arc<dyn tsunagu_interaction::ResourceCheck>,
) -> TestServer {
    start_adjusted(tune, check, |fhir| fhir).await
}

/// [`start_checked`], with the interaction layer adjusted by `adjust` before it serves.
pub async fn start_adjusted(
    tune: impl FnOnce(&mut tsunagu_server::ServerConfig),
    check: Arc<dyn tsunagu_interaction::ResourceCheck>,
    adjust: impl FnOnce(tsunagu_interaction::Interactions) -> tsunagu_interaction::Interactions,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = tsunagu_server::ServerConfig::new(base.clone());
    tune(&mut config);
    let interaction_config =
        tsunagu_interaction::InteractionConfig { limits: config.limits.clone(), ..Default::default() };
    let fhir = Arc::new(adjust(tsunagu_interaction::Interactions::new(store, check, interaction_config)));
    let limits = config.limits.clone();
    let app = tsunagu_server::router(fhir, config);
    tokio::spawn(async move { tsunagu_server::serve(listener, app, &limits).await });
    TestServer { base, client: reqwest::Client::new(), _dir: dir }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Any request: method, path, headers and body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

pub async fn json(r: reqwest::Response) -> serde_json::Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an OperationOutcome body with at least one error issue.
pub fn assert_outcome(v: &serde_json::Value) {
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    assert!(v["issue"].as_array().is_some_and(|a| !a.is_empty()), "{v}");
}
