//! A transaction's work before the write lock: ids for POSTs, references rewritten as far
//! as they can be foreseen, and index entries extracted from the result on every core.
//! What only the transaction decides (a conditional entry's match, a conditional
//! reference's target) is guessed from committed data; `process` extracts again, inside,
//! the entries whose references it rewrote otherwise.

use super::{rewrite_references, Entry, Verb};
use crate::{Interactions, RequestContext};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Entries from which a transaction's index extraction is split across threads (below it,
/// starting threads costs more than it saves).
const PARALLEL_EXTRACTION_MIN_ENTRIES: usize = 16;
/// Guesses from committed data one Bundle may make before the write lock (each is a
/// bounded search; past this many, the rest is left to the transaction).
const GUESSES_PER_BUNDLE: usize = 256;
/// Time all of one Bundle's guesses may take: a guess's step ceiling does not see every
/// cost (a `:contains` over a very long string is one step), and a guess only saves work.
const GUESS_TIME: std::time::Duration = std::time::Duration::from_millis(500);

impl Interactions {
    /// Before the write lock: ids for POSTs, references rewritten as far as they can be
    /// foreseen, and index entries extracted from the result. What only the transaction
    /// can decide (a conditional entry's match, a conditional reference's target) is
    /// guessed from committed data; where the transaction decides otherwise, `process`
    /// extracts the entries it changes again, inside. Returns the conditional references
    /// guessed (reference → `Type/id`).
    pub(super) fn extract_early(&self, entries: &mut [Entry], ctx: &RequestContext) -> HashMap<String, String> {
        let budget = AtomicUsize::new(GUESSES_PER_BUNDLE);
        let deadline = std::time::Instant::now() + GUESS_TIME;
        let committed = |ty: &str, criteria: &str| {
            if std::time::Instant::now() >= deadline {
                return None;
            }
            budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).ok()?;
            self.committed_matches(ty, criteria, ctx)
        };
        let mut ids: HashMap<String, String> = HashMap::new();
        for e in entries.iter_mut() {
            e.early_id = Self::early_id(e, &committed);
            // As `process` does: in a batch too, where it only matters for self-references.
            if let (Some(id), Some(f)) = (&e.early_id, &e.full_url) {
                ids.insert(f.clone(), format!("{}/{id}", e.ty));
            }
        }
        let guesses: Mutex<HashMap<String, Option<String>>> = Mutex::new(HashMap::new());
        let guess = |reference: &str| -> Option<String> {
            let (ty, query) = self.conditional_reference(reference)?;
            if let Some(known) = guesses.lock().unwrap_or_else(|p| p.into_inner()).get(reference) {
                return known.clone();
            }
            let target = match committed(ty, query).as_deref() {
                Some([id]) => Some(format!("{ty}/{id}")),
                _ => None,
            };
            guesses.lock().unwrap_or_else(|p| p.into_inner()).insert(reference.to_string(), target.clone());
            target
        };
        // Extraction (FHIRPath, full-text tokens) is most of a large Bundle's CPU outside
        // the write lock: its chunks run on the cores in parallel.
        let extract = |chunk: &mut [Entry]| {
            for e in chunk.iter_mut().filter(|e| matches!(e.verb, Verb::Post | Verb::Put)) {
                let Some(mut resource) = e.resource.clone() else { continue };
                rewrite_references(&mut resource, &mut |r| ids.get(r).cloned().or_else(|| guess(r)));
                let index = self.search.index_entries(&e.ty, &resource);
                e.early = Some(index);
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 || entries.len() < PARALLEL_EXTRACTION_MIN_ENTRIES {
            extract(entries);
        } else {
            let per = entries.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let mut chunks = entries.chunks_mut(per);
                let first = chunks.next();
                for chunk in chunks {
                    scope.spawn(|| extract(chunk));
                }
                if let Some(chunk) = first {
                    extract(chunk);
                }
            });
        }
        let guesses = guesses.into_inner().unwrap_or_else(|p| p.into_inner());
        guesses.into_iter().filter_map(|(r, t)| Some((r, t?))).collect()
    }

    /// The id references to an entry are rewritten with before the transaction: its own
    /// where it is known (a POST's new id, a PUT's id), otherwise the one committed data
    /// suggests the transaction will decide (a conditional create's single match or its
    /// new id; a conditional update's single match or the resource's own id). `None`
    /// where nothing can be foreseen.
    fn early_id(e: &mut Entry, committed: &dyn Fn(&str, &str) -> Option<Vec<String>>) -> Option<String> {
        let ty = e.ty.clone();
        let matches = |criteria: &str| committed(&ty, criteria);
        match e.verb {
            Verb::Post => {
                let id = crate::resource::new_id();
                e.new_id = Some(id.clone());
                match e.if_none_exist.as_deref().map(matches) {
                    None => Some(id),
                    Some(found) => match found?.as_slice() {
                        [] => Some(id),
                        [one] => Some(one.clone()),
                        _ => None,
                    },
                }
            }
            Verb::Put => match e.criteria.as_deref().map(matches) {
                None => e.rest.first().cloned(),
                Some(found) => match found?.as_slice() {
                    [] => {
                        let body_id = e.resource.as_ref().and_then(|r| r.get("id")).and_then(Value::as_str);
                        let id = body_id.map_or_else(crate::resource::new_id, str::to_string);
                        e.new_id = Some(id.clone());
                        Some(id)
                    }
                    [one] => Some(one.clone()),
                    _ => None,
                },
            },
            _ => None,
        }
    }

    /// A conditional reference (`Patient?identifier=…`) split into its type and criteria.
    pub(super) fn conditional_reference<'r>(&self, reference: &'r str) -> Option<(&'r str, &'r str)> {
        let (ty, query) = reference.split_once('?')?;
        (!ty.contains('/') && self.model.is_resource_type(ty)).then_some((ty, query))
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_entries;
    use crate::search::SearchParams;
    use crate::{Interactions, RequestContext};
    use serde_json::{json, Value};

    /// A guess from committed data can be overtaken by another writer before the write
    /// lock: the transaction's own answer decides, and every entry whose references it
    /// rewrote otherwise is searchable by what they now name, not by the guess.
    #[test]
    fn guesses_overtaken_by_another_write_give_way_to_the_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = tsunagu_store_postgres::test_backend::fresh_store(dir.path());
        let it = Interactions::new(store, std::sync::Arc::new(crate::NoCheck), Default::default());
        let ctx = RequestContext::new("http://x");
        let org = |v: &str| json!({"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": v}]});
        let create = |v: &str| it.create("Organization", org(v), None, &ctx).unwrap().version.id;
        let (b, c) = (create("2"), create("3"));
        let url = |n: u8| format!("urn:uuid:0b7a3c1e-0000-4000-8000-0000000000{n:02}");
        let patient = |family: &str, field: &str, reference: String| {
            let mut p = json!({"resourceType": "Patient", "name": [{"family": family}]});
            p[field] = if field == "managingOrganization" {
                json!({"reference": reference})
            } else {
                json!([{"reference": reference}])
            };
            json!({"resource": p, "request": {"method": "POST", "url": "Patient"}})
        };
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": url(1), "resource": org("1"),
             "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:org|1"}},
            {"fullUrl": url(2), "resource": org("2"),
             "request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:org|2"}},
            {"fullUrl": url(4), "resource": org("4"),
             "request": {"method": "PUT", "url": "Organization?identifier=urn:org|4"}},
            patient("一", "managingOrganization", url(1)),
            patient("二", "managingOrganization", url(2)),
            patient("三", "generalPractitioner", "Organization?identifier=urn:org|3".into()),
            patient("四", "managingOrganization", url(4)),
        ]});
        let Value::Object(map) = bundle else { unreachable!() };
        let mut entries = parse_entries(map, &ctx).unwrap();
        let guesses = it.extract_early(&mut entries, &ctx);
        // What was guessed: "1" and "4" new, "2" and "3" the resources that exist now.
        assert_eq!(entries[0].early_id, entries[0].new_id);
        assert_eq!(entries[1].early_id.as_deref(), Some(b.as_str()));
        assert_eq!(entries[2].early_id, entries[2].new_id);
        assert_eq!(guesses.get("Organization?identifier=urn:org|3"), Some(&format!("Organization/{c}")));
        // Another writer, between the guesses and the write lock.
        let a = create("1");
        it.delete("Organization", &b, None, &ctx).unwrap();
        it.delete("Organization", &c, None, &ctx).unwrap();
        let c2 = create("3");
        let d = create("4");
        let mut searches = super::super::BundleSearches::new(&it.config.limits);
        let responses = crate::access_txn::in_request_txn(&it, &ctx, |txn| {
            it.process(txn, entries, &guesses, &mut searches, &ctx, true)
        })
        .unwrap();
        let new_b = responses[1]["response"]["location"].as_str().unwrap().split('/').nth(1).unwrap().to_string();
        assert_ne!(new_b, b);
        let families = |query: String| {
            let page = it.search(Some("Patient"), &SearchParams::parse(&query), &ctx).unwrap();
            let found = page["entry"].as_array().into_iter().flatten();
            found.map(|e| e["resource"]["name"][0]["family"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        };
        assert_eq!(families(format!("organization=Organization/{a}")), ["一"]);
        assert_eq!(families(format!("organization=Organization/{new_b}")), ["二"]);
        assert_eq!(families(format!("general-practitioner=Organization/{c2}")), ["三"]);
        assert_eq!(families(format!("organization=Organization/{d}")), ["四"]);
        // Nothing is searchable by a guess the transaction overruled.
        for wrong in [b, c] {
            assert!(families(format!("organization=Organization/{wrong}")).is_empty());
            assert!(families(format!("general-practitioner=Organization/{wrong}")).is_empty());
        }
    }
}
