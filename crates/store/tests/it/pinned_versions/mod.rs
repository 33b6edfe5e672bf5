//! `PinnedView::versions_after` and `count_versions_upto` (the backend-neutral reader of
//! backups and checks), generic over the backend: included (`#[path]`) by this crate's
//! `pinned_versions_sqlite.rs` and by `tsunagu-store-postgres`'s `pinned_versions.rs`.
#![allow(dead_code)]

use tsunagu_store::{all_versions, Method, NewVersion, PinnedView, ResourceVersion, Store, StoreError, VERSIONS_PAGE};

fn put(store: &dyn Store, ty: &str, id: &str, version: u64, deleted: bool, at: i64) {
    let body = format!(r#"{{"resourceType":"{ty}","id":"{id}","meta":{{"versionId":"{version}"}}}}"#);
    store
        .write(&mut |txn| {
            txn.put(&NewVersion {
                resource_type: ty,
                id,
                version,
                last_updated_ms: at,
                method: if deleted {
                    Method::Delete
                } else if version == 1 {
                    Method::Post
                } else {
                    Method::Put
                },
                body: (!deleted).then_some(body.as_bytes()),
                index: &[],
            })
        })
        .unwrap();
}

fn collect(view: &dyn PinnedView) -> Vec<ResourceVersion> {
    let mut all = Vec::new();
    all_versions(view, |v| -> Result<(), StoreError> {
        all.push(v);
        Ok(())
    })
    .unwrap();
    all
}

/// Every version, old and deleted ones included, in write order, paged, from one moment.
pub fn every_version_in_write_order(store: &dyn Store) {
    let empty = store.pinned().unwrap();
    assert_eq!(empty.high_seq(), 0);
    assert!(empty.versions_after(0, 10).unwrap().is_empty());
    assert_eq!(empty.count_versions_upto(i64::MAX).unwrap(), 0);
    drop(empty);

    // More than a page, so that `all_versions` pages: creates, updates and deletes.
    let n = VERSIONS_PAGE + 150;
    let mut at = 1_000;
    let mut expected: Vec<(String, u64, bool)> = Vec::new();
    for i in 0..n {
        let id = format!("p{}", i % 400);
        let version = expected.iter().filter(|(e, _, _)| *e == id).count() as u64 + 1;
        let deleted = i % 7 == 6 && version > 1;
        at += 1;
        put(store, "Patient", &id, version, deleted, at);
        expected.push((id, version, deleted));
    }
    let view = store.pinned().unwrap();
    // Written after the view was opened: not in it.
    put(store, "Observation", "late", 1, false, at + 1);

    let all = collect(view.as_ref());
    assert_eq!(all.len(), n);
    let got: Vec<(String, u64, bool)> = all.iter().map(|v| (v.id.clone(), v.version, v.deleted)).collect();
    assert_eq!(got, expected);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "strictly increasing seq");
    assert_eq!(all.last().unwrap().seq, view.high_seq());
    for v in &all {
        assert_eq!(v.body.is_empty(), v.deleted, "{}/{}", v.id, v.version);
        assert_eq!(v.method == Method::Delete, v.deleted);
        if !v.deleted {
            let text = std::str::from_utf8(&v.body).unwrap();
            assert!(text.contains(&format!(r#""id":"{}""#, v.id)), "{text}");
        }
    }
    assert_eq!(all.first().unwrap().last_updated_ms, 1_001);

    // Pages: after a seq, at most `limit`.
    let mid = all[99].seq;
    let page = view.versions_after(mid, 10).unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(page, all[100..110].to_vec());
    assert!(view.versions_after(view.high_seq(), 10).unwrap().is_empty());

    assert_eq!(view.count_versions_upto(mid).unwrap(), 100);
    assert_eq!(view.count_versions_upto(view.high_seq()).unwrap(), n as u64);
    assert_eq!(view.count_versions_upto(i64::MAX).unwrap(), n as u64, "the later write is not seen");
    assert_eq!(store.pinned().unwrap().count_versions_upto(i64::MAX).unwrap(), n as u64 + 1);

    // The view moves to another thread and still reads its moment.
    let len = std::thread::spawn(move || collect(view.as_ref()).len()).join().unwrap();
    assert_eq!(len, n);
}
