//! create, update, delete and patch, each also conditional. Every write runs inside one
//! store write transaction, so the conditional search, the version check and the write
//! happen atomically: two concurrent conditional creates cannot both create, and two
//! concurrent updates cannot both become version n+1.

use crate::access_txn::in_request_txn;
use crate::error::InteractionError;
use crate::resource::{expect_resource, valid_id, with_identity};
use crate::{instant, Caller, Interactions, Permission, RequestContext};
use serde_json::Value;
use tsunagu_store::{Method, NewVersion, ResourceVersion, StoreError, WriteTxn};

/// The writes of a resource at `[type]`, `[type]/[id]` or `[type]?criteria`, for the check
/// made before their body is read ([`Interactions::check_write_before_body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// `POST [type]`.
    Create,
    /// `PUT`: an update, or a create with the client's id.
    Put,
    /// `PATCH`.
    Patch,
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Written {
    pub version: ResourceVersion,
    /// 201 rather than 200.
    pub created: bool,
    /// A conditional create found an existing match and wrote nothing.
    pub existing: bool,
    /// An update or patch changed nothing and wrote nothing (the current version stands).
    pub unchanged: bool,
}

impl Written {
    pub fn status(&self) -> u16 {
        if self.created {
            201
        } else {
            200
        }
    }
}

pub use tsunagu_patch::Patch as PatchBody;

/// Runs `f` in a write transaction, keeping the interaction error that made it roll back.
/// `f` runs once, so it may move the resources it writes instead of cloning them.
pub(crate) fn in_txn<T>(
    it: &Interactions,
    f: impl FnOnce(&mut dyn WriteTxn) -> Result<T, InteractionError>,
) -> Result<T, InteractionError> {
    crate::terminology_sync::begin();
    crate::clins::consent::begin();
    let mut f = Some(f);
    let mut out: Option<Result<T, InteractionError>> = None;
    let res = it.store.write(&mut |txn| match f.take().expect("a store runs the write closure once")(txn) {
        Ok(v) => {
            out = Some(Ok(v));
            Ok(())
        }
        Err(InteractionError::Store(e)) => Err(e),
        Err(e) => {
            out = Some(Err(e));
            Err(StoreError::Aborted)
        }
    });
    if matches!((&res, &out), (Ok(()), Some(Ok(_)))) {
        crate::terminology_sync::committed(&it.terminology);
        crate::clins::consent::committed(&it.sharing.consents);
    }
    match (res, out) {
        (Ok(()), Some(r)) => r,
        (Err(StoreError::Aborted), Some(r)) => r,
        (Err(e), _) => Err(InteractionError::Store(e)),
        (Ok(()), None) => unreachable!("write closure always records its result"),
    }
}

impl Interactions {
    /// `POST [type]`, with `If-None-Exist` when `condition` is given.
    pub fn create(
        &self,
        ty: &str,
        body: Value,
        condition: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Written, InteractionError> {
        self.known_type(ty)?;
        if ty == "Bundle" && condition.is_none() && crate::clins::submission_profile(&body).is_some() {
            return self.submit(body, ctx);
        }
        self.check_permission(&ctx.caller, ty, Permission::Create)?;
        if condition.is_some() {
            self.check_permission(&ctx.caller, ty, Permission::Search)?;
        }
        let (map, index) = self.prepared(ty, body)?;
        in_request_txn(self, ctx, |txn| {
            if let Some(cond) = condition {
                if let Some(existing) = self.match_one_for_create(txn, ty, cond)? {
                    return Ok(Written { version: existing, created: false, existing: true, unchanged: false });
                }
            }
            let id = crate::resource::new_id();
            self.put_version(txn, ty, &id, 1, Method::Post, Content::indexed(map, index)).map(|version| Written {
                version,
                created: true,
                existing: false,
                unchanged: false,
            })
        })
    }

    /// `PUT [type]/[id]`; creates the resource with that id when it does not exist.
    pub fn update(
        &self,
        ty: &str,
        id: &str,
        body: Value,
        if_match: Option<u64>,
        ctx: &RequestContext,
    ) -> Result<Written, InteractionError> {
        self.known_type(ty)?;
        let map = expect_resource(ty, body)?;
        match map.get("id").and_then(Value::as_str) {
            Some(body_id) if body_id == id => {}
            Some(body_id) => {
                return Err(InteractionError::bad_request(
                    format!("the resource id '{body_id}' differs from the id '{id}' in the URL"),
                    format!("リソースの id '{body_id}' が URL の id '{id}' と一致しません"),
                ))
            }
            None => {
                return Err(InteractionError::bad_request(
                    "an update must carry the resource id in the body",
                    "更新するリソースの本文に id が必要です",
                ))
            }
        }
        self.check_id(id)?;
        self.may_put(&ctx.caller, ty)?;
        let (map, index) = self.prepared(ty, Value::Object(map))?;
        in_request_txn(self, ctx, |txn| {
            self.update_in(txn, ty, id, Content::indexed(map, index), if_match, Method::Put)
        })
    }

    /// `PUT [type]?[criteria]`.
    pub fn conditional_update(
        &self,
        ty: &str,
        criteria: &str,
        body: Value,
        if_match: Option<u64>,
        ctx: &RequestContext,
    ) -> Result<Written, InteractionError> {
        self.known_type(ty)?;
        self.may_put(&ctx.caller, ty)?;
        self.check_permission(&ctx.caller, ty, Permission::Search)?;
        let (map, index) = self.prepared(ty, body)?;
        let body_id = map.get("id").and_then(Value::as_str).map(str::to_string);
        in_request_txn(self, ctx, |txn| {
            let matches = self.conditional_matches(txn, ty, criteria)?;
            let id = match (matches.as_slice(), &body_id) {
                ([], Some(id)) => id.clone(),
                ([], None) => crate::resource::new_id(),
                ([(_, found)], Some(id)) if found != id => {
                    return Err(InteractionError::bad_request(
                        format!("the criteria match {ty}/{found}, but the body has id '{id}'"),
                        format!("条件に一致したのは {ty}/{found} ですが、本文の id は '{id}' です"),
                    ))
                }
                ([(_, found)], _) => found.clone(),
                _ => return Err(multiple_matches(ty, criteria)),
            };
            self.check_id(&id)?;
            self.update_in(txn, ty, &id, Content::indexed(map, index), if_match, Method::Put)
        })
    }

    /// `DELETE [type]/[id]`. Deleting what is absent or already deleted succeeds (R4).
    pub fn delete(
        &self,
        ty: &str,
        id: &str,
        if_match: Option<u64>,
        ctx: &RequestContext,
    ) -> Result<Option<Written>, InteractionError> {
        self.known_type(ty)?;
        self.check_permission(&ctx.caller, ty, Permission::Delete)?;
        in_request_txn(self, ctx, |txn| self.delete_in(txn, ty, id, if_match))
    }

    /// `DELETE [type]?[criteria]`: deletes the single match; several matches are refused.
    pub fn conditional_delete(
        &self,
        ty: &str,
        criteria: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Written>, InteractionError> {
        self.known_type(ty)?;
        self.check_permission(&ctx.caller, ty, Permission::Delete)?;
        self.check_permission(&ctx.caller, ty, Permission::Search)?;
        in_request_txn(self, ctx, |txn| {
            let matches = self.conditional_matches(txn, ty, criteria)?;
            match matches.as_slice() {
                [] => Ok(None),
                [(_, id)] => self.delete_in(txn, ty, id, None),
                _ => Err(multiple_matches(ty, criteria)),
            }
        })
    }

    /// `PATCH [type]/[id]` (or conditional when `id` is `None` and `criteria` given).
    pub fn patch(
        &self,
        ty: &str,
        target: PatchTarget<'_>,
        patch: &PatchBody,
        if_match: Option<u64>,
        ctx: &RequestContext,
    ) -> Result<Written, InteractionError> {
        self.known_type(ty)?;
        self.check_permission(&ctx.caller, ty, Permission::Update)?;
        if matches!(target, PatchTarget::Criteria(_)) {
            self.check_permission(&ctx.caller, ty, Permission::Search)?;
        }
        // The patched resource is checked and indexed outside the write lock from the
        // version current now; inside, that work is reused if no one wrote in between.
        let early = match target {
            PatchTarget::Id(id) => self.patched_outside(ty, id, patch).ok().flatten(),
            PatchTarget::Criteria(_) => None,
        };
        in_request_txn(self, ctx, |txn| {
            let id = match target {
                PatchTarget::Id(id) => id.to_string(),
                PatchTarget::Criteria(c) => {
                    let m = self.conditional_matches(txn, ty, c)?;
                    match m.as_slice() {
                        [(_, id)] => id.clone(),
                        [] => return Err(InteractionError::NotFound(ty.into(), c.into())),
                        _ => return Err(multiple_matches(ty, c)),
                    }
                }
            };
            self.patch_in(txn, ty, &id, patch, if_match, early)
        })
    }

    /// A patch applied, checked and indexed against the current version, outside the
    /// write transaction; `None` when there is nothing to patch (the transaction then
    /// answers why).
    fn patched_outside(&self, ty: &str, id: &str, patch: &PatchBody) -> Result<Option<Prepared>, InteractionError> {
        let Some(current) = self.store.read(ty, id)?.filter(|v| !v.deleted) else { return Ok(None) };
        let doc: Value = match serde_json::from_slice(&current.body) {
            Ok(d) => d,
            Err(_) => return Ok(None),
        };
        let Ok(patched) = apply_patch(doc, patch) else { return Ok(None) };
        let Ok((map, index)) = self.prepared(ty, patched) else { return Ok(None) };
        Ok(Some(Prepared { version: current.version, map, index }))
    }

    pub(crate) fn patch_in(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        id: &str,
        patch: &PatchBody,
        if_match: Option<u64>,
        early: Option<Prepared>,
    ) -> Result<Written, InteractionError> {
        let current = match txn.current(ty, id)? {
            None => return Err(InteractionError::NotFound(ty.into(), id.into())),
            Some(v) if v.deleted => return Err(InteractionError::Gone(ty.into(), id.into())),
            Some(v) => v,
        };
        check_if_match(ty, id, if_match, current.version)?;
        if let Some(p) = early.filter(|p| p.version == current.version) {
            if p.map.get("id").and_then(Value::as_str) == Some(id) {
                if unchanged(&current, &p.map) {
                    self.check_unchanged(txn, &current, Method::Patch, &p.map, Some(&p.index))?;
                    return Ok(Written { version: current, created: false, existing: false, unchanged: true });
                }
                let version = self.put_version(
                    txn,
                    ty,
                    id,
                    current.version + 1,
                    Method::Patch,
                    Content::indexed(p.map, p.index),
                )?;
                return Ok(Written { version, created: false, existing: false, unchanged: false });
            }
        }
        let doc: Value =
            serde_json::from_slice(&current.body).map_err(|e| StoreError::Corrupt(format!("{ty}/{id}: {e}")))?;
        let patched = crate::write::apply_patch(doc, patch)?;
        // The result of a well-formed patch that is not a valid resource is 422 (http.html#patch).
        let unprocessable = |e: InteractionError| match e {
            InteractionError::Invalid { issues, .. } => InteractionError::Invalid { status: 422, issues },
            InteractionError::BadRequest { en, ja } => InteractionError::Invalid {
                status: 422,
                issues: vec![crate::ContentIssue { severity: "error", code: "invalid", expression: None, en, ja }],
            },
            e => e,
        };
        let map = self.checked_resource(ty, patched).map_err(unprocessable)?;
        if map.get("id").and_then(Value::as_str) != Some(id) {
            return Err(unprocessable(InteractionError::invalid(
                "invalid",
                Some(format!("{ty}.id")),
                "A patch may not change the resource id".into(),
                "パッチでリソースの id を変更することはできません".into(),
            )));
        }
        if unchanged(&current, &map) {
            self.check_unchanged(txn, &current, Method::Patch, &map, None)?;
            return Ok(Written { version: current, created: false, existing: false, unchanged: true });
        }
        let version = self.put_version(txn, ty, id, current.version + 1, Method::Patch, Content::new(map))?;
        Ok(Written { version, created: false, existing: false, unchanged: false })
    }

    pub(crate) fn update_in(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        id: &str,
        content: Content,
        if_match: Option<u64>,
        method: Method,
    ) -> Result<Written, InteractionError> {
        let current = txn.current(ty, id)?;
        let next = match &current {
            Some(cur) => {
                check_if_match(ty, id, if_match, cur.version)?;
                cur.version + 1
            }
            None => {
                if if_match.is_some() {
                    return Err(InteractionError::precondition(
                        format!("{ty}/{id} does not exist, so If-Match cannot hold"),
                        format!("{ty}/{id} が存在しないため If-Match の条件を満たせません"),
                    ));
                }
                1
            }
        };
        if let Some(cur) = current.as_ref().filter(|c| unchanged(c, &content.map)) {
            self.check_unchanged(txn, cur, method, &content.map, content.index.as_deref())?;
            return Ok(Written { version: cur.clone(), created: false, existing: false, unchanged: true });
        }
        let created = current.as_ref().is_none_or(|c| c.deleted);
        let version = self.put_version(txn, ty, id, next, method, content)?;
        Ok(Written { version, created, existing: false, unchanged: false })
    }

    pub(crate) fn delete_in(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<Option<Written>, InteractionError> {
        let Some(cur) = txn.current(ty, id)? else {
            return Ok(None);
        };
        check_if_match(ty, id, if_match, cur.version)?;
        if cur.deleted {
            return Ok(None);
        }
        if ty == "Bundle" {
            self.withdraw_items(txn, id, &cur.body)?;
        }
        crate::clins::consent::written(ty);
        let ts = self.store.next_timestamp_ms();
        let v = NewVersion {
            resource_type: ty,
            id,
            version: cur.version + 1,
            last_updated_ms: ts,
            method: Method::Delete,
            body: None,
            index: &[],
        };
        txn.put(&v)?;
        let version = ResourceVersion {
            resource_type: ty.into(),
            id: id.into(),
            version: cur.version + 1,
            last_updated_ms: ts,
            deleted: true,
            method: Method::Delete,
            body: Vec::new(),
            seq: 0,
        };
        Ok(Some(Written { version, created: false, existing: false, unchanged: false }))
    }

    /// Sets meta, serialises and writes one version.
    pub(crate) fn put_version(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        id: &str,
        version: u64,
        method: Method,
        content: Content,
    ) -> Result<ResourceVersion, InteractionError> {
        let Content { map, index } = content;
        let ts = self.store.next_timestamp_ms();
        let resource = with_identity(map, ty, id, version, &instant::format_instant(ts));
        let body = serde_json::to_vec(&resource).expect("a JSON value always serialises");
        crate::terminology_sync::written(ty, &resource);
        crate::clins::consent::written(ty);
        // Callers that can extract outside the write lock (bulk load) pass the entries in.
        let index = index.unwrap_or_else(|| self.search.index_entries(ty, &resource));
        txn.put(&NewVersion {
            resource_type: ty,
            id,
            version,
            last_updated_ms: ts,
            method,
            body: Some(&body),
            index: &index,
        })?;
        Ok(ResourceVersion {
            resource_type: ty.into(),
            id: id.into(),
            version,
            last_updated_ms: ts,
            deleted: false,
            method,
            body,
            seq: 0,
        })
    }

    /// An update that writes nothing (its content is `current`'s) is still one the caller
    /// must be allowed to make: checked as if written, so that the answer cannot tell a
    /// caller that may not write the resource what it holds.
    fn check_unchanged(
        &self,
        txn: &mut dyn WriteTxn,
        current: &ResourceVersion,
        method: Method,
        map: &serde_json::Map<String, Value>,
        index: Option<&[tsunagu_store::IndexEntry]>,
    ) -> Result<(), InteractionError> {
        let ty = &current.resource_type;
        let extracted;
        let index = match index {
            Some(i) => i,
            None => {
                extracted = self.search.index_entries(ty, &Value::Object(map.clone()));
                &extracted
            }
        };
        txn.check_put(&NewVersion {
            resource_type: ty,
            id: &current.id,
            version: current.version + 1,
            last_updated_ms: current.last_updated_ms,
            method,
            body: Some(&current.body),
            index,
        })?;
        Ok(())
    }

    /// Refuses (403) a write `kind` of a resource of `ty` that the caller's scopes allow on
    /// no resource of the type, whatever its body: the HTTP layer asks before reading a body
    /// it would only throw away. A POST of a Bundle may be a JP-CLINS submission, which has
    /// rules of its own; it is let through. May read the store (consent and sharing rules):
    /// not for an async worker.
    pub fn check_write_before_body(&self, caller: &Caller, ty: &str, kind: WriteKind) -> Result<(), InteractionError> {
        if caller.is_unrestricted() || !self.model.is_resource_type(ty) {
            return Ok(());
        }
        match kind {
            WriteKind::Create if ty == "Bundle" => Ok(()),
            WriteKind::Create => self.check_permission(caller, ty, Permission::Create),
            WriteKind::Put => self.may_put(caller, ty),
            WriteKind::Patch => self.check_permission(caller, ty, Permission::Update),
        }
    }

    /// A PUT updates or creates: the caller needs one of the two on the type (which one
    /// applies is decided inside the transaction).
    fn may_put(&self, caller: &Caller, ty: &str) -> Result<(), InteractionError> {
        self.check_permission(caller, ty, Permission::Update)
            .or_else(|_| self.check_permission(caller, ty, Permission::Create))
    }

    pub(crate) fn check_id(&self, id: &str) -> Result<(), InteractionError> {
        if valid_id(id) {
            Ok(())
        } else {
            Err(InteractionError::bad_request(
                format!("'{id}' is not a valid resource id (1–64 of A–Z a–z 0–9 - .)"),
                format!("'{id}' はリソース id として不正です（英数字・-・. の 1〜64 文字）"),
            ))
        }
    }

    /// A resource ready to write and its index entries, both made outside the write lock:
    /// extraction does not depend on the id or the version (`_id` and `_lastUpdated` are
    /// answered from the version row), so a large resource does not hold up other writers.
    pub(crate) fn prepared(
        &self,
        ty: &str,
        body: Value,
    ) -> Result<(serde_json::Map<String, Value>, Vec<tsunagu_store::IndexEntry>), InteractionError> {
        let map = self.checked_resource(ty, body)?;
        let v = Value::Object(map);
        let index = self.search.index_entries(ty, &v);
        let Value::Object(map) = v else { unreachable!("built as an object above") };
        Ok((map, index))
    }

    /// The body as a resource object of type `ty` that passed the safety guard (nesting,
    /// narrative; always) and the content check (as configured).
    pub(crate) fn checked_resource(
        &self,
        ty: &str,
        body: Value,
    ) -> Result<serde_json::Map<String, Value>, InteractionError> {
        let body = Value::Object(expect_resource(ty, body)?);
        refuse_submission_paths(&body)?;
        let structure_checked = self.check.checks_base_structure();
        crate::guard::check(&body, &self.config.limits, !structure_checked)?;
        self.check_content(&body)?;
        if !structure_checked {
            crate::guard::check_xml_form(&body)?;
        }
        match body {
            Value::Object(map) => Ok(map),
            _ => unreachable!("built as an object above"),
        }
    }

    pub(crate) fn check_content(&self, resource: &Value) -> Result<(), InteractionError> {
        let mut issues = self.check.check(resource);
        if issues.iter().any(|i| i.severity == "error") {
            let status = self.check.rejection_status(resource, &issues);
            crate::guard::cut_issues(&mut issues, self.config.limits.max_issues);
            Err(InteractionError::Invalid { status, issues })
        } else {
            Ok(())
        }
    }

    /// For conditional create: the single existing match, `None` when there is none.
    pub(crate) fn match_one_for_create(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        criteria: &str,
    ) -> Result<Option<ResourceVersion>, InteractionError> {
        let matches = self.conditional_matches(txn, ty, criteria)?;
        self.one_for_create(txn, ty, criteria, &matches)
    }

    /// What a conditional create found: nothing, the one resource it leaves as it is, or
    /// too many (412).
    pub(crate) fn one_for_create(
        &self,
        txn: &mut dyn WriteTxn,
        ty: &str,
        criteria: &str,
        matches: &[(String, String)],
    ) -> Result<Option<ResourceVersion>, InteractionError> {
        match matches {
            [] => Ok(None),
            [(t, id)] => Ok(txn.current(t, id)?),
            _ => Err(multiple_matches(ty, criteria)),
        }
    }
}

/// JP-CLINS submissions and their items are written by `clins` alone: a submission
/// Bundle only through `POST [base]/Bundle` (which validates and splits it), an item only
/// as part of its submission (so withdrawal and replacement know every item).
fn refuse_submission_paths(resource: &Value) -> Result<(), InteractionError> {
    let (en, ja) = if crate::clins::submission_profile(resource).is_some() {
        (
            "A JP-CLINS Bundle is submitted with POST [base]/Bundle; a later submission with the same identifier replaces it",
            "JP-CLINS の Bundle は POST [base]/Bundle で提出します（同じ identifier の再提出で置き換わります）",
        )
    } else if crate::clins::claims_item(resource) {
        (
            "meta.source urn:tsunagu:submission:… and the tags urn:tsunagu:submitter and urn:tsunagu:person mark items of a JP-CLINS submission; change the item by submitting the Bundle again",
            "meta.source の urn:tsunagu:submission:… とタグ urn:tsunagu:submitter・urn:tsunagu:person は JP-CLINS 提出の項目を表します。項目は Bundle の再提出で変更してください",
        )
    } else {
        return Ok(());
    };
    Err(InteractionError::Invalid {
        status: 422,
        issues: vec![crate::error::ContentIssue {
            severity: "error",
            code: "business-rule",
            expression: None,
            en: en.into(),
            ja: ja.into(),
        }],
    })
}

/// What a new version holds: the resource, and its index entries when they were extracted
/// before the write lock (`None`: extract while writing).
pub(crate) struct Content {
    map: serde_json::Map<String, Value>,
    index: Option<Vec<tsunagu_store::IndexEntry>>,
}

impl Content {
    pub(crate) fn new(map: serde_json::Map<String, Value>) -> Self {
        Content { map, index: None }
    }

    pub(crate) fn indexed(map: serde_json::Map<String, Value>, index: Vec<tsunagu_store::IndexEntry>) -> Self {
        Content { map, index: Some(index) }
    }

    pub(crate) fn with_index(
        map: serde_json::Map<String, Value>,
        index: Option<Vec<tsunagu_store::IndexEntry>>,
    ) -> Self {
        Content { map, index }
    }
}

/// A patched resource checked and indexed against `version`.
pub(crate) struct Prepared {
    version: u64,
    map: serde_json::Map<String, Value>,
    index: Vec<tsunagu_store::IndexEntry>,
}

/// Which resource a PATCH addresses.
#[derive(Debug, Clone, Copy)]
pub enum PatchTarget<'a> {
    Id(&'a str),
    Criteria(&'a str),
}

fn check_if_match(ty: &str, id: &str, if_match: Option<u64>, current: u64) -> Result<(), InteractionError> {
    match if_match {
        Some(v) if v != current => Err(InteractionError::precondition(
            format!("{ty}/{id} is at version {current}, not {v} (If-Match)"),
            format!("{ty}/{id} の現在のバージョンは {current} で、If-Match の {v} と一致しません"),
        )),
        _ => Ok(()),
    }
}

/// A conditional interaction's criteria found more than one resource (the search stops at
/// the second: how many more there are costs work and changes no answer).
pub(crate) fn multiple_matches(ty: &str, criteria: &str) -> InteractionError {
    InteractionError::precondition(
        format!("more than one {ty} matches '{criteria}'; the criteria must select one"),
        format!("条件 '{criteria}' に一致する {ty} が複数あります。1 件に絞り込む条件が必要です"),
    )
}

/// Applies a patch document to a resource.
pub(crate) fn apply_patch(doc: Value, patch: &PatchBody) -> Result<Value, InteractionError> {
    tsunagu_patch::apply(doc, patch).map_err(|e| match e {
        // Too costly is the limit's answer (422 too-costly, in both languages).
        tsunagu_patch::PatchError::Limit { path, limit } => (*limit).at(format!("path '{path}'")).into(),
        e => InteractionError::Invalid {
            status: 422,
            issues: vec![crate::ContentIssue {
                severity: "error",
                code: "processing",
                expression: None,
                en: format!("The patch could not be applied: {e}"),
                ja: format!("パッチを適用できません: {e}"),
            }],
        },
    })
}

/// Whether `map`, about to be written over `current`, is its content again: the same
/// elements, and the same `meta` once `versionId` and `lastUpdated` are set aside (the id
/// is the URL's). Such an update or patch writes no version and answers the current one,
/// as HAPI, Blaze and Medplum do: a client that PUTs back what it read, an interface
/// resending unchanged records or an import run twice does not grow the history.
fn unchanged(current: &ResourceVersion, map: &serde_json::Map<String, Value>) -> bool {
    !current.deleted && same_content(&current.body, map)
}

/// Whether a stored body and a new resource differ at most in `id`, `meta.versionId` and
/// `meta.lastUpdated` (the order of keys aside).
pub(crate) fn same_content(stored: &[u8], map: &serde_json::Map<String, Value>) -> bool {
    let Ok(Value::Object(stored)) = serde_json::from_slice::<Value>(stored) else { return false };
    let content = |m: &'_ serde_json::Map<String, Value>| {
        m.iter().filter(|(k, _)| !matches!(k.as_str(), "resourceType" | "id" | "meta")).count()
    };
    let meta = |m: &serde_json::Map<String, Value>| -> serde_json::Map<String, Value> {
        let mut kept = m.get("meta").and_then(Value::as_object).cloned().unwrap_or_default();
        kept.remove("versionId");
        kept.remove("lastUpdated");
        kept
    };
    content(&stored) == content(map)
        && map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "resourceType" | "id" | "meta"))
            .all(|(k, v)| stored.get(k) == Some(v))
        && meta(&stored) == meta(map)
}
