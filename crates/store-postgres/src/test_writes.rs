//! Writes the crate's unit tests share: first versions of resources with given index
//! entries.

use tsunagu_store::{IndexEntry, IndexValue, Method, NewVersion, Store};

use crate::PostgresStore;

/// Version 1 of `ty/id`, a body of `{}`, with `index`.
fn first_version<'a>(ty: &'a str, id: &'a str, index: &'a [IndexEntry]) -> NewVersion<'a> {
    NewVersion { resource_type: ty, id, version: 1, last_updated_ms: 1, method: Method::Post, body: Some(b"{}"), index }
}

/// Writes version 1 of `ty/id` with the token `urn:s|code` under `param`.
pub(crate) fn put_token(store: &PostgresStore, ty: &str, id: &str, param: &str, code: &str) {
    let index = [IndexEntry {
        param: param.into(),
        value: IndexValue::Token { system: Some("urn:s".into()), code: code.into(), display: None },
    }];
    store.write(&mut |txn| txn.put(&first_version(ty, id, &index))).unwrap();
}

/// Writes version 1 of each (type, id, index entries), in order, in one transaction.
pub(crate) fn put_first(store: &PostgresStore, resources: &[(&str, String, Vec<IndexEntry>)]) {
    let versions: Vec<NewVersion> = resources.iter().map(|(ty, id, index)| first_version(ty, id, index)).collect();
    store.write(&mut |txn| txn.put_new(&versions)).unwrap();
}
