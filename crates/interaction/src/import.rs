//! Bulk loading: the same semantics as transactions and updates, staged so that the CPU
//! work (parsing, checking, id assignment, reference rewriting) runs on many threads and
//! only the writes go through the single writer.

use crate::bundle::rewrite_references;
use crate::error::InteractionError;
use crate::resource::valid_id;
use crate::write::{in_txn, Content};
use crate::Interactions;
use serde_json::{Map, Value};
use std::collections::HashMap;
use tsunagu_store::{Method, WriteTxn};

/// One resource ready to be written: identity decided, references rewritten, checked.
#[derive(Debug, Clone)]
pub struct Staged {
    pub resource_type: String,
    pub id: String,
    /// POST (new id, version 1) or PUT (client id, update-as-create).
    pub method: Method,
    /// The resource while it is being staged; moved into `body` when staging ends.
    pub resource: Map<String, Value>,
    /// Search index entries, extracted by the staging thread (after reference rewriting)
    /// so that the single writer only writes.
    pub index: Vec<tsunagu_store::IndexEntry>,
    /// The body as version 1, serialised by the staging thread with a placeholder
    /// `lastUpdated` at `timestamp_at` that the writer overwrites in place (the timestamp
    /// must be taken inside the write lock to follow write order).
    pub body: Vec<u8>,
    pub timestamp_at: usize,
}

/// Same width as every `format_instant` result for years 0000–9999.
const TIMESTAMP_PLACEHOLDER: &str = "0000-00-00T00:00:00.000Z";

/// Whether an input must run as a real transaction rather than be staged: a Bundle with
/// conditional, DELETE, PATCH or read entries.
pub fn needs_transaction(input: &Value) -> bool {
    if input.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return false;
    }
    input.get("entry").and_then(Value::as_array).into_iter().flatten().any(|e| {
        let Some(r) = e.get("request") else {
            return false;
        };
        let method = r.get("method").and_then(Value::as_str).unwrap_or("");
        matches!(method, "DELETE" | "PATCH" | "GET" | "HEAD")
            || r.get("ifNoneExist").is_some()
            || r.get("ifMatch").is_some()
            || r.get("url").and_then(Value::as_str).is_some_and(|u| u.contains('?'))
    })
}

impl Interactions {
    /// Stages one parsed input (a resource or a Bundle) for [`Interactions::load`].
    ///
    /// - `transaction` and `batch` Bundles: POST entries get new ids and every reference to
    ///   their fullUrl is rewritten, exactly as a transaction would; PUT entries keep theirs.
    ///   Conditional entries cannot be staged (they must be resolved at write time): the
    ///   error tells the caller to run the Bundle as a transaction instead.
    /// - `collection` Bundles and single resources: resources with an id are updated
    ///   (created with that id), resources without one are created.
    pub fn stage(&self, input: Value) -> Result<Vec<Staged>, InteractionError> {
        let Some(ty) = input.get("resourceType").and_then(Value::as_str).map(str::to_string) else {
            return Err(InteractionError::invalid(
                "required",
                None,
                "The input has no resourceType".into(),
                "resourceType がありません".into(),
            ));
        };
        if crate::clins::submission_profile(&input).is_some() {
            return Err(InteractionError::not_supported(
                "a JP-CLINS submission is stored with Interactions::submit, not staged",
                "JP-CLINS の提出は submit で保存します",
            ));
        }
        let kind = input.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        if ty != "Bundle" || !matches!(kind.as_str(), "transaction" | "batch" | "collection") {
            return Ok(self.with_index(vec![self.stage_resource(input, None)?]));
        }
        let Value::Object(mut bundle) = input else { unreachable!("has resourceType") };
        let entries = match bundle.remove("entry") {
            Some(Value::Array(e)) => e,
            _ => Vec::new(),
        };
        let mut staged = Vec::with_capacity(entries.len());
        let mut ids: HashMap<String, String> = HashMap::new();
        for (index, mut entry) in entries.into_iter().enumerate() {
            let Some(resource) = entry.get_mut("resource").map(Value::take) else {
                continue;
            };
            let request = entry.get("request");
            let method = request.and_then(|r| r.get("method")).and_then(Value::as_str).unwrap_or("");
            let conditional = request.is_some_and(|r| {
                r.get("ifNoneExist").is_some()
                    || r.get("ifMatch").is_some()
                    || r.get("url").and_then(Value::as_str).is_some_and(|u| u.contains('?'))
            });
            if conditional || matches!(method, "DELETE" | "PATCH" | "GET" | "HEAD") {
                return Err(InteractionError::not_supported(
                    format!("entry {index} is a {method} or conditional request; load this Bundle as a transaction"),
                    format!(
                        "エントリ {index} は {method} または条件付きのため、トランザクションとして読み込んでください"
                    ),
                ));
            }
            let post = method == "POST" || (kind == "collection" && resource.get("id").is_none());
            let s = self.stage_resource(resource, post.then(crate::resource::new_id))?;
            if let Some(full) = entry.get("fullUrl").and_then(Value::as_str) {
                ids.insert(full.to_string(), format!("{}/{}", s.resource_type, s.id));
            }
            staged.push(s);
        }
        if !ids.is_empty() && kind != "batch" {
            for s in staged.iter_mut() {
                for v in s.resource.values_mut() {
                    rewrite_references(v, &mut |r| ids.get(r).cloned());
                }
            }
        }
        Ok(self.with_index(staged))
    }

    /// Extracts index entries once references are final.
    fn with_index(&self, mut staged: Vec<Staged>) -> Vec<Staged> {
        for s in staged.iter_mut() {
            let v = Value::Object(std::mem::take(&mut s.resource));
            s.index = self.search.index_entries(&s.resource_type, &v);
            let Value::Object(map) = v else { continue };
            let resource = crate::resource::with_identity(map, &s.resource_type, &s.id, 1, TIMESTAMP_PLACEHOLDER);
            s.body = serde_json::to_vec(&resource).expect("a JSON value always serialises");
            // meta comes third (resourceType, id, meta), so the first occurrence is ours.
            let needle = format!("\"lastUpdated\":\"{TIMESTAMP_PLACEHOLDER}\"");
            s.timestamp_at = find(&s.body, needle.as_bytes()).map_or(0, |i| i + "\"lastUpdated\":\"".len());
        }
        staged
    }

    fn stage_resource(&self, resource: Value, new_id: Option<String>) -> Result<Staged, InteractionError> {
        let ty = resource.get("resourceType").and_then(Value::as_str).unwrap_or("").to_string();
        self.known_type(&ty)?;
        let map = self.checked_resource(&ty, resource)?;
        let (id, method) = match new_id {
            Some(id) => (id, Method::Post),
            None => match map.get("id").and_then(Value::as_str) {
                Some(id) if valid_id(id) => (id.to_string(), Method::Put),
                Some(id) => {
                    return Err(InteractionError::bad_request(
                        format!("'{id}' is not a valid resource id"),
                        format!("'{id}' はリソース id として不正です"),
                    ))
                }
                None => (crate::resource::new_id(), Method::Post),
            },
        };
        Ok(Staged {
            resource_type: ty,
            id,
            method,
            resource: map,
            index: Vec::new(),
            body: Vec::new(),
            timestamp_at: 0,
        })
    }

    /// Writes staged resources in one atomic transaction; returns how many were written (an
    /// update that changes nothing writes no version).
    pub fn load(&self, staged: Vec<Staged>) -> Result<usize, InteractionError> {
        let n = staged.len();
        let unchanged = in_txn(self, |txn| {
            let mut unchanged = 0;
            // First versions gather here and go to the store together; anything that must
            // see the current state (a PUT) writes them first, so order is kept.
            let mut fresh: Vec<(Staged, i64)> = Vec::new();
            let mut pending_ids: std::collections::HashSet<(String, String)> = Default::default();
            // Timestamps reserved for the fresh versions still to come (one step of a shared
            // clock for a run of them, not one each); dropped at an update, which takes its
            // own, so timestamps follow the order of writing.
            let mut stamps = 0..0;
            let total = staged.len();
            for (i, mut s) in staged.into_iter().enumerate() {
                let key = (s.resource_type.clone(), s.id.clone());
                let is_new = s.method == Method::Post || {
                    if pending_ids.contains(&key) {
                        self.put_fresh(txn, &mut fresh)?;
                        pending_ids.clear();
                    }
                    txn.current(&s.resource_type, &s.id)?.is_none()
                };
                if is_new && s.timestamp_at > 0 {
                    // The common case: version 1, body ready; only the timestamp is filled in.
                    let ts = stamps.next().unwrap_or_else(|| {
                        let left = total - i;
                        let first = self.store.next_timestamps_ms(left);
                        stamps = first + 1..first + left as i64;
                        first
                    });
                    let stamp = crate::instant::format_instant(ts);
                    s.body[s.timestamp_at..s.timestamp_at + stamp.len()].copy_from_slice(stamp.as_bytes());
                    pending_ids.insert(key);
                    fresh.push((s, ts));
                } else {
                    self.put_fresh(txn, &mut fresh)?;
                    pending_ids.clear();
                    stamps = 0..0;
                    // An update of an existing resource: rebuild the body with its version.
                    let map = match serde_json::from_slice::<Value>(&s.body) {
                        Ok(Value::Object(m)) => m,
                        _ => {
                            return Err(
                                tsunagu_store::StoreError::Corrupt(format!("{}/{}", s.resource_type, s.id)).into()
                            )
                        }
                    };
                    let content = Content::indexed(map, s.index);
                    if self.update_in(txn, &s.resource_type, &s.id, content, None, Method::Put)?.unchanged {
                        unchanged += 1;
                    }
                }
            }
            self.put_fresh(txn, &mut fresh)?;
            Ok(unchanged)
        })?;
        Ok(n - unchanged)
    }

    /// Writes gathered first versions with their timestamps.
    fn put_fresh(&self, txn: &mut dyn WriteTxn, fresh: &mut Vec<(Staged, i64)>) -> Result<(), InteractionError> {
        let versions: Vec<_> = fresh
            .iter()
            .map(|(s, ts)| tsunagu_store::NewVersion {
                resource_type: &s.resource_type,
                id: &s.id,
                version: 1,
                last_updated_ms: *ts,
                method: s.method,
                body: Some(&s.body),
                index: &s.index,
            })
            .collect();
        txn.put_new(&versions)?;
        fresh.clear();
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
