//! Two server nodes on one PostgreSQL database: a CodeSystem written through one reaches
//! the other's terminology service (which validation, `:in` searches and terminology
//! operations use) by `follow_other_nodes`, and not before it runs. SKIPPED without
//! PostgreSQL (a failure under CI=true).

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tsunagu_interaction::{Interactions, NoCheck, RequestContext};
use tsunagu_store_postgres::{throwaway, PostgresConfig, PostgresStore};

fn node(url: &str) -> Arc<Interactions> {
    let store = Arc::new(PostgresStore::open(&PostgresConfig::new(url)).unwrap());
    let fhir = Arc::new(Interactions::new(store, Arc::new(NoCheck), Default::default()));
    fhir.load_stored_terminology().unwrap();
    fhir
}

#[test]
fn terminology_written_on_one_node_reaches_the_other() {
    let Some(cluster) = throwaway::shared() else { return };
    let url = cluster.url(&cluster.create_database());
    let (a, b) = (node(&url), node(&url));
    b.follow_other_nodes(Duration::from_millis(50));
    let known = |fhir: &Interactions| fhir.terminology().lookup("urn:tsunagu:test:colours", "red", None, &[]).is_ok();
    assert!(!known(&b));
    let cs = json!({"resourceType": "CodeSystem", "id": "colours", "url": "urn:tsunagu:test:colours",
        "status": "active", "content": "complete", "concept": [{"code": "red", "display": "赤"}]});
    a.update("CodeSystem", "colours", cs, None, &RequestContext::new("")).unwrap();
    assert!(known(&a), "the writing node knows at once");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !known(&b) {
        assert!(Instant::now() < deadline, "the other node never learned of the CodeSystem");
        std::thread::sleep(Duration::from_millis(20));
    }
}
