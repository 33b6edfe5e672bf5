//! Writes the crate's unit tests share: one resource with one token index entry.

use tsunagu_store::{IndexEntry, IndexValue, Method, NewVersion, Store};

use crate::PostgresStore;

/// Writes version 1 of `ty/id` with the token `urn:s|code` under `param`.
pub(crate) fn put_token(store: &PostgresStore, ty: &str, id: &str, param: &str, code: &str) {
    let index = [IndexEntry {
        param: param.into(),
        value: IndexValue::Token { system: Some("urn:s".into()), code: code.into(), display: None },
    }];
    store
        .write(&mut |txn| {
            txn.put(&NewVersion {
                resource_type: ty,
                id,
                version: 1,
                last_updated_ms: 1,
                method: Method::Post,
                body: Some(b"{}"),
                index: &index,
            })
        })
        .unwrap();
}
