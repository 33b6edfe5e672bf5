use tsunagu_store::{Method, NewVersion, SearchQuery, Store};

#[test]
fn a_write_reads_back() {
    let Some(store) = tsunagu_store_postgres::throwaway::test_store() else { return };
    let body = br#"{"resourceType":"Patient","id":"a"}"#;
    store
        .write(&mut |txn| {
            txn.put(&NewVersion {
                resource_type: "Patient",
                id: "a",
                version: 1,
                last_updated_ms: 5,
                method: Method::Post,
                body: Some(body),
                index: &[],
            })
        })
        .unwrap();
    let v = store.read("Patient", "a").unwrap().unwrap();
    assert_eq!(v.body, body);
    let page = store.search(&SearchQuery { resource_type: Some("Patient".into()), count: 10, total: true, ..Default::default() }).unwrap();
    assert_eq!(page.total, Some(1));
}
