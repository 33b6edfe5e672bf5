//! Keeps the terminology service in step with stored CodeSystem, ValueSet and ConceptMap
//! resources: written versions are noted during a write transaction (on the writing
//! thread, which runs the whole transaction) and handed to the service only once it has
//! committed, so a rolled-back transaction leaves no trace there.

use std::cell::RefCell;

use serde_json::Value;
use tsunagu_store::{SearchQuery, Store};
use tsunagu_terminology::Terminology;

use crate::InteractionError;

const TYPES: [&str; 3] = ["CodeSystem", "ValueSet", "ConceptMap"];

thread_local! {
    static WRITTEN: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn begin() {
    WRITTEN.with(|w| w.borrow_mut().clear());
}

pub(crate) fn written(ty: &str, resource: &Value) {
    if TYPES.contains(&ty) {
        WRITTEN.with(|w| w.borrow_mut().push(resource.clone()));
    }
}

pub(crate) fn committed(terminology: &Terminology) {
    for resource in WRITTEN.with(|w| std::mem::take(&mut *w.borrow_mut())) {
        // The resource is stored either way; one the service cannot interpret is simply not
        // usable for terminology operations (the write already passed the content check).
        let _ = terminology.add(resource);
    }
}

/// Adds every stored CodeSystem, ValueSet and ConceptMap to the service; returns how many.
pub(crate) fn load_stored(store: &dyn Store, terminology: &Terminology) -> Result<usize, InteractionError> {
    load_after(store, terminology, 0).map(|(n, _)| n)
}

/// Bytes of bodies one page of the loader holds (past its first resource).
const PAGE_BYTES: u64 = 64 * 1024 * 1024;

/// Adds the stored CodeSystem, ValueSet and ConceptMap resources whose current version was
/// written after `after_seq` (by any node on a shared database); returns how many it took
/// and the highest `seq` it saw (at least `after_seq`), where the next call goes on from.
pub(crate) fn load_after(
    store: &dyn Store,
    terminology: &Terminology,
    after_seq: i64,
) -> Result<(usize, i64), InteractionError> {
    let mut n = 0;
    let mut high = after_seq;
    for ty in TYPES {
        let mut after = Some(after_seq).filter(|s| *s > 0);
        loop {
            let q = SearchQuery {
                resource_type: Some(ty.into()),
                count: 200,
                after_seq: after,
                // A page of large code systems is cut and continued, not held whole.
                max_bytes: Some(tsunagu_store::ByteCap { max: PAGE_BYTES, first_always: true }),
                ..Default::default()
            };
            let page = store.search(&q)?;
            for v in &page.resources {
                if let Ok(resource) = serde_json::from_slice::<Value>(&v.body) {
                    if terminology.add(resource).is_ok() {
                        n += 1;
                    }
                }
                after = Some(v.seq);
                high = high.max(v.seq);
            }
            if !page.more {
                break;
            }
        }
    }
    Ok((n, high))
}
