//! Submitting, replacing and withdrawing a JP-CLINS submission (see the module doc of
//! `clins`). Everything a submission writes happens in one write transaction.

use serde_json::{Map, Value};
use tsunagu_store::{IndexEntry, Method, WriteTxn};

use super::items::{add_tags, item_refs, items, Item};
use super::sharing::{person_keys, INDICATION_SYSTEM, PERSON_SYSTEM, SUBMITTER_SYSTEM};
use super::submission_profile;
use crate::access_txn::in_request_txn;
use crate::error::{ContentIssue, InteractionError};
use crate::write::{Content, Written};
use crate::{Interactions, Permission, RequestContext};

/// A submission that passed validation, its items made for a fresh Bundle id and indexed
/// outside the write lock. Cloned only when a group commit has to be retried one by one.
#[derive(Clone)]
pub struct PreparedSubmission {
    bundle: Map<String, Value>,
    bundle_index: Vec<IndexEntry>,
    /// `system|value` of `Bundle.identifier`, escaped for a search.
    criteria: String,
    /// The 医療機関コード it is submitted under.
    institution: String,
    /// The tags every item gets (submitter, person).
    labels: Vec<Value>,
    fresh_id: String,
    items: Vec<(Item, Vec<IndexEntry>)>,
}

impl Interactions {
    /// `POST [base]/Bundle` with a JP-CLINS Bundle: validate, then store or replace.
    pub fn submit(&self, body: Value, ctx: &RequestContext) -> Result<Written, InteractionError> {
        self.check_permission(&ctx.caller, "Bundle", Permission::Create)?;
        let prepared = self.prepare_submission(body)?;
        self.commit_submission(prepared, ctx)
    }

    /// Everything a submission needs before the write lock: the guard, validation against
    /// its JP-CLINS profile (always, whatever `validate` says), items and their indexes.
    pub fn prepare_submission(&self, body: Value) -> Result<PreparedSubmission, InteractionError> {
        let map = crate::resource::expect_resource("Bundle", body)?;
        let bundle = Value::Object(map);
        let profile = submission_profile(&bundle).map(str::to_string).ok_or_else(|| {
            InteractionError::bad_request(
                "the Bundle declares no JP-CLINS profile",
                "Bundle が JP-CLINS のプロファイルを宣言していません",
            )
        })?;
        crate::guard::check(&bundle, &self.config.limits, false)?;
        self.validate_submission(&bundle, &profile)?;
        self.verify_signature(&bundle)?;
        let criteria = identifier_criteria(&bundle)?;
        let institution = institution_of(&bundle);
        let labels = labels(&bundle, &institution);
        let fresh_id = crate::resource::new_id();
        let items = self.indexed_items(&bundle, &fresh_id, &labels);
        let Value::Object(mut bundle) = bundle else { unreachable!("built as an object above") };
        if let Some(Value::Object(meta)) = bundle.get_mut("meta") {
            // The Bundle holds every item: it carries the strictest indications among them.
            let mut bundle_labels = labels.clone();
            bundle_labels.extend(indications(&items));
            add_tags(meta, &bundle_labels);
        }
        let bundle = Value::Object(bundle);
        let bundle_index = self.search.index_entries("Bundle", &bundle);
        let Value::Object(bundle) = bundle else { unreachable!("built as an object above") };
        Ok(PreparedSubmission { bundle, bundle_index, criteria, institution, labels, fresh_id, items })
    }

    fn validate_submission(&self, bundle: &Value, profile: &str) -> Result<(), InteractionError> {
        let checked = self
            .profiles
            .as_ref()
            .and_then(|c| c.check_profiles(bundle, &[profile]).map(|i| (c, i)))
            .or_else(|| self.check.check_profiles(bundle, &[profile]).map(|i| (&self.check, i)));
        let Some((check, mut issues)) = checked else {
            return Err(InteractionError::Invalid {
                status: 422,
                issues: vec![ContentIssue {
                    severity: "error",
                    code: "not-supported",
                    expression: None,
                    en: format!("{profile} cannot be checked: the JP-CLINS packages are not loaded"),
                    ja: format!("JP-CLINS のパッケージが読み込まれていないため、{profile} を検証できません"),
                }],
            });
        };
        if issues.iter().any(|i| i.severity == "error") {
            let status = check.rejection_status(bundle, &issues);
            crate::guard::cut_issues(&mut issues, self.config.limits.max_issues);
            return Err(InteractionError::Invalid { status, issues });
        }
        Ok(())
    }

    /// A signed submission must carry a signature that verifies (HPKI chain, validity,
    /// revocation, the signer's role for the document type); an unsigned one passes.
    fn verify_signature(&self, bundle: &Value) -> Result<(), InteractionError> {
        if bundle.get("signature").is_none() {
            return Ok(());
        }
        let outcome = match &self.signatures {
            Some(check) => check.verify(bundle),
            None => Err((
                "The Bundle is signed, but no HPKI trust anchors are configured to verify it".into(),
                "Bundle に署名がありますが、検証に使う HPKI のトラストアンカーが設定されていません".into(),
            )),
        };
        outcome.map_err(|(en, ja)| InteractionError::Invalid {
            status: 422,
            issues: vec![ContentIssue {
                severity: "error",
                code: "security",
                expression: Some("Bundle.signature".into()),
                en,
                ja,
            }],
        })
    }

    fn indexed_items(&self, bundle: &Value, bundle_id: &str, labels: &[Value]) -> Vec<(Item, Vec<IndexEntry>)> {
        items(bundle, bundle_id, labels)
            .into_iter()
            .map(|mut item| {
                let v = Value::Object(std::mem::take(&mut item.map));
                let index = self.search.index_entries(&item.ty, &v);
                let Value::Object(map) = v else { unreachable!("built as an object above") };
                item.map = map;
                (item, index)
            })
            .collect()
    }

    /// Stores a prepared submission, replacing the one with the same identifier.
    pub fn commit_submission(&self, p: PreparedSubmission, ctx: &RequestContext) -> Result<Written, InteractionError> {
        self.may_submit(&p, ctx)?;
        self.note_submission();
        in_request_txn(self, ctx, |txn| self.commit_in(txn, p))
    }

    /// Group commit: several prepared submissions in one write transaction, so a load pays
    /// one commit (and one fsync) for all of them instead of one each. When any of them
    /// fails, the transaction rolls back and each is committed alone, so one bad submission
    /// never takes the others with it. Results are in the order given.
    pub fn commit_submissions(
        &self,
        batch: Vec<PreparedSubmission>,
        ctx: &RequestContext,
    ) -> Vec<Result<Written, InteractionError>> {
        if batch.len() > 1 && batch.iter().all(|p| self.may_submit(p, ctx).is_ok()) {
            self.note_submission();
            let group = in_request_txn(self, ctx, |txn| {
                batch.iter().map(|p| self.commit_in(txn, p.clone())).collect::<Result<Vec<_>, _>>()
            });
            if let Ok(written) = group {
                return written.into_iter().map(Ok).collect();
            }
        }
        batch.into_iter().map(|p| self.commit_submission(p, ctx)).collect()
    }

    /// Only an institution's client submits, and only under its own number.
    fn may_submit(&self, p: &PreparedSubmission, ctx: &RequestContext) -> Result<(), InteractionError> {
        let institution = &p.institution;
        if !ctx.caller.is_unrestricted() && ctx.caller.agent.institution.is_none() {
            return Err(InteractionError::forbidden(
                "A JP-CLINS submission is made by a client acting for an institution (client add --institution, token --institution)",
                "JP-CLINS の提出は医療機関として登録されたクライアントが行います（client add --institution、token --institution）",
            ));
        }
        if let Some(own) = &ctx.caller.agent.institution {
            if own != institution {
                return Err(InteractionError::forbidden(
                    format!("An institution submits under its own number ({own}), not {institution}"),
                    format!("医療機関は自機関の番号（{own}）で提出します（{institution} ではありません）"),
                ));
            }
        }
        Ok(())
    }

    /// The writes of one submission inside a write transaction.
    fn commit_in(&self, txn: &mut dyn WriteTxn, p: PreparedSubmission) -> Result<Written, InteractionError> {
        let PreparedSubmission { bundle, bundle_index, criteria, institution, labels, fresh_id, items } = p;
        let found = self.conditional_matches(txn, "Bundle", &criteria)?;
        let (id, items) = match found.as_slice() {
            [] => (fresh_id, items),
            [(_, id)] => {
                let current = txn.current("Bundle", id)?.filter(|c| !c.deleted);
                if let Some(cur) = &current {
                    if submitter_of(&cur.body).is_some_and(|s| s != institution) {
                        return Err(InteractionError::forbidden(
                            "This identifier is held by another institution's submission",
                            "この identifier は他の医療機関の提出で使われています",
                        ));
                    }
                    if crate::write::same_content(&cur.body, &bundle) {
                        return Ok(Written { version: cur.clone(), created: false, existing: true, unchanged: false });
                    }
                }
                // Replacing: the items take ids derived from the held Bundle's id.
                let items = self.indexed_items(&Value::Object(bundle.clone()), id, &labels);
                if let Some(cur) = current {
                    let old: Value = serde_json::from_slice(&cur.body).unwrap_or(Value::Null);
                    let keep: std::collections::HashSet<(&str, &str)> =
                        items.iter().map(|(i, _)| (i.ty.as_str(), i.id.as_str())).collect();
                    for (ty, item_id) in item_refs(&old, id) {
                        if !keep.contains(&(ty.as_str(), item_id.as_str())) {
                            self.delete_in(txn, &ty, &item_id, None)?;
                        }
                    }
                }
                (id.clone(), items)
            }
            _ => return Err(crate::write::multiple_matches("Bundle", &criteria)),
        };
        for (item, index) in items {
            self.write_item(txn, &id, item, index)?;
        }
        let current = txn.current("Bundle", &id)?;
        let (next, method) = current.as_ref().map_or((1, Method::Post), |c| (c.version + 1, Method::Put));
        let created = current.is_none_or(|c| c.deleted);
        let version = self.put_version(txn, "Bundle", &id, next, method, Content::indexed(bundle, bundle_index))?;
        Ok(Written { version, created, existing: false, unchanged: false })
    }

    /// Writes one item unless it already holds the same content; an id held by a resource
    /// of another origin is a conflict, never overwritten.
    fn write_item(
        &self,
        txn: &mut dyn WriteTxn,
        bundle_id: &str,
        item: Item,
        index: Vec<IndexEntry>,
    ) -> Result<(), InteractionError> {
        let Item { ty, id, map } = item;
        let current = txn.current(&ty, &id)?;
        let next = match &current {
            Some(c) if !c.deleted => {
                let body: Value = serde_json::from_slice(&c.body).unwrap_or(Value::Null);
                let source = body.pointer("/meta/source").and_then(Value::as_str);
                if source != Some(&format!("{}{bundle_id}", super::SOURCE_PREFIX)) {
                    return Err(InteractionError::Conflict {
                        en: format!("{ty}/{id} is held by a resource that is not an item of this submission"),
                        ja: format!("{ty}/{id} はこの提出の項目ではないリソースが使用しています"),
                    });
                }
                if crate::write::same_content(&c.body, &map) {
                    return Ok(());
                }
                c.version + 1
            }
            Some(c) => c.version + 1,
            None => 1,
        };
        let method = if next == 1 { Method::Post } else { Method::Put };
        self.put_version(txn, &ty, &id, next, method, Content::indexed(map, index))?;
        Ok(())
    }

    /// Inside a deletion of `Bundle/{id}`: when the Bundle is a submission, its items go too.
    pub(crate) fn withdraw_items(
        &self,
        txn: &mut dyn WriteTxn,
        bundle_id: &str,
        body: &[u8],
    ) -> Result<(), InteractionError> {
        let Ok(bundle) = serde_json::from_slice::<Value>(body) else {
            return Ok(());
        };
        if submission_profile(&bundle).is_none() {
            return Ok(());
        }
        for (ty, id) in item_refs(&bundle, bundle_id) {
            self.delete_in(txn, &ty, &id, None)?;
        }
        Ok(())
    }
}

/// The 医療機関コード a submission is made under: the first ten digits of its identifier
/// (`医療機関番号10桁^年^施設内ID`), else the JP_eCS_InstitutionNumber of its first entry,
/// else `unknown`.
fn institution_of(bundle: &Value) -> String {
    let value = bundle.pointer("/identifier/value").and_then(Value::as_str).unwrap_or("");
    let prefix = value.split('^').next().unwrap_or("");
    if prefix.len() == 10 && prefix.bytes().all(|b| b.is_ascii_digit()) && value.contains('^') {
        return prefix.to_string();
    }
    let first = bundle.pointer("/entry/0/resource");
    let extension = first.and_then(|r| r.get("extension")).and_then(Value::as_array).into_iter().flatten().find(|e| {
        e.get("url").and_then(Value::as_str)
            == Some("http://jpfhir.jp/fhir/clins/Extension/StructureDefinition/JP_eCS_InstitutionNumber")
    });
    extension
        .and_then(|e| e.pointer("/valueIdentifier/value"))
        .and_then(Value::as_str)
        .filter(|v| v.len() == 10 && v.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("unknown")
        .to_string()
}

/// The submitter tag and one person tag per matching identifier of the Bundle's Patient.
fn labels(bundle: &Value, institution: &str) -> Vec<Value> {
    let mut out = vec![serde_json::json!({ "system": SUBMITTER_SYSTEM, "code": institution })];
    let patients = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"));
    let mut keys: Vec<String> = patients.flat_map(person_keys).collect();
    keys.sort();
    keys.dedup();
    out.extend(keys.into_iter().map(|k| serde_json::json!({ "system": PERSON_SYSTEM, "code": k })));
    out
}

/// The UNDELIVERED and UNINFORMED tags any item carries.
fn indications(items: &[(Item, Vec<IndexEntry>)]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for code in ["UNDELIVERED", "UNINFORMED"] {
        let carried = items.iter().any(|(i, _)| {
            i.map.get("meta").and_then(|m| m.get("tag")).and_then(Value::as_array).is_some_and(|tags| {
                tags.iter().any(|t| {
                    t.get("system").and_then(Value::as_str) == Some(INDICATION_SYSTEM)
                        && t.get("code").and_then(Value::as_str) == Some(code)
                })
            })
        });
        if carried {
            out.push(serde_json::json!({ "system": INDICATION_SYSTEM, "code": code }));
        }
    }
    out
}

fn submitter_of(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let tags = v.pointer("/meta/tag")?.as_array()?;
    tags.iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some(SUBMITTER_SYSTEM))
        .and_then(|t| t.get("code").and_then(Value::as_str))
        .map(str::to_string)
}

/// `identifier=system|value` for finding the held submission; the value escaped as FHIR
/// search requires (`\`, `,`, `$`, `|`) and percent-encoded where a query would split.
fn identifier_criteria(bundle: &Value) -> Result<String, InteractionError> {
    let system = bundle.pointer("/identifier/system").and_then(Value::as_str);
    let value = bundle.pointer("/identifier/value").and_then(Value::as_str);
    let (Some(system), Some(value)) = (system, value) else {
        return Err(InteractionError::Invalid {
            status: 422,
            issues: vec![ContentIssue {
                severity: "error",
                code: "required",
                expression: Some("Bundle.identifier".into()),
                en: "A JP-CLINS submission needs Bundle.identifier with system and value".into(),
                ja: "JP-CLINS の提出には system と value のある Bundle.identifier が必要です".into(),
            }],
        });
    };
    Ok(format!("identifier={}|{}", escape(system), escape(value)))
}

/// [`super::escape_search_value`], then percent-encoded where a query string would split.
fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in super::escape_search_value(s).chars() {
        match c {
            '%' | '&' | '#' | '+' | '=' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifier_values_are_escaped() {
        assert_eq!(super::escape("131^2024^a-b"), "131^2024^a-b");
        assert_eq!(super::escape("a,b|c$d\\e&f"), "a\\,b\\|c\\$d\\\\e%26f");
    }
}
