//! The write transaction of a request: every version written through it is checked
//! against what the caller may create, update or delete (before and after), every
//! conditional search in it is confined to what the caller may search, and its audit
//! record is appended in the same transaction, so no acknowledged write lacks one.

use tsunagu_auth::Permission;
use tsunagu_store::{AuditEntry, IndexEntry, NewVersion, ResourceVersion, SearchQuery, StoreError, WriteTxn};

use crate::error::InteractionError;
use crate::{Interactions, RequestContext};

struct CallerTxn<'a> {
    inner: &'a mut dyn WriteTxn,
    it: &'a Interactions,
    ctx: &'a RequestContext,
    /// `Type/id/_history/n` of each version written, and how.
    written: Vec<(String, tsunagu_store::Method)>,
    /// Why the caller was refused, kept while the store unwinds with `Aborted`.
    refused: Option<InteractionError>,
}

impl CallerTxn<'_> {
    fn refuse<T>(&mut self, e: InteractionError) -> Result<T, StoreError> {
        self.refused = Some(e);
        Err(StoreError::Aborted)
    }

    fn admit(&mut self, v: &NewVersion<'_>) -> Result<(), StoreError> {
        if v.resource_type == "AuditEvent" {
            return self.refuse(InteractionError::MethodNotAllowed(
                "AuditEvent is written by the server only / AuditEvent はサーバだけが記録します".into(),
            ));
        }
        let caller = &self.ctx.caller;
        if caller.is_unrestricted() {
            return Ok(());
        }
        let current = self.inner.current(v.resource_type, v.id)?;
        if current.as_ref().is_some_and(|c| c.deleted)
            && !matches!(
                self.it.reach(caller, v.resource_type, Permission::Create, None),
                Ok(crate::access::Reach::All)
            )
        {
            // Whose was it? The deleted version cannot say; only a caller that may create
            // any resource of the type may take the id over.
            return self.refuse(crate::access::outside(v.resource_type, v.id, Permission::Create));
        }
        let existing = current.filter(|e| !e.deleted);
        let p = match (&existing, v.body) {
            (_, None) => Permission::Delete,
            (None, Some(_)) => Permission::Create,
            (Some(_), Some(_)) => Permission::Update,
        };
        if let Some(e) = &existing {
            if let Err(err) = self.it.check_visible(caller, p, e) {
                return self.refuse(err);
            }
        }
        if v.body.is_some() {
            if let Err(err) = self.it.may_write(caller, p, v.resource_type, v.id, v.index) {
                return self.refuse(err);
            }
        } else if let Err(err) = self.it.check_permission(caller, v.resource_type, p) {
            return self.refuse(err);
        }
        Ok(())
    }

    fn note(&mut self, v: &NewVersion<'_>) {
        self.written.push((format!("{}/{}/_history/{}", v.resource_type, v.id, v.version), v.method));
    }
}

impl WriteTxn for CallerTxn<'_> {
    /// A live version the caller can neither read, update nor delete is refused here, before
    /// any If-Match comparison or patch could tell the caller something about it.
    fn current(&mut self, ty: &str, id: &str) -> Result<Option<ResourceVersion>, StoreError> {
        let v = self.inner.current(ty, id)?;
        let caller = &self.ctx.caller;
        if let Some(live) = v.as_ref().filter(|v| !v.deleted && !caller.is_unrestricted()) {
            let seen = [Permission::Read, Permission::Update, Permission::Delete]
                .into_iter()
                .any(|p| self.it.may_see_version(caller, p, live));
            if !seen {
                return self.refuse(crate::access::outside(ty, id, Permission::Read));
            }
        }
        Ok(v)
    }

    fn check_put(&mut self, v: &NewVersion<'_>) -> Result<(), StoreError> {
        self.admit(v)
    }

    fn put(&mut self, v: &NewVersion<'_>) -> Result<(), StoreError> {
        self.admit(v)?;
        self.inner.put(v)?;
        self.note(v);
        Ok(())
    }

    fn put_new(&mut self, versions: &[NewVersion<'_>]) -> Result<(), StoreError> {
        for v in versions {
            self.admit(v)?;
        }
        self.inner.put_new(versions)?;
        versions.iter().for_each(|v| self.note(v));
        Ok(())
    }

    fn search_ids(&mut self, q: &SearchQuery) -> Result<Vec<(String, String)>, StoreError> {
        if self.ctx.caller.is_unrestricted() {
            return self.inner.search_ids(q);
        }
        let mut q = q.clone();
        if let Err(e) = self.it.confine(&self.ctx.caller, &mut q, None) {
            return self.refuse(e);
        }
        self.inner.search_ids(&q)
    }

    fn replace_index(&mut self, seq: i64, ty: &str, index: &[IndexEntry]) -> Result<(), StoreError> {
        self.inner.replace_index(seq, ty, index)
    }

    fn get_setting(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_setting(key)
    }

    fn set_setting(&mut self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.inner.set_setting(key, value)
    }

    fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.inner.append_audit(entries)
    }
}

/// Runs `f` in a write transaction on behalf of the request's caller (see the module doc).
pub(crate) fn in_request_txn<T>(
    it: &Interactions,
    ctx: &RequestContext,
    f: impl FnOnce(&mut dyn WriteTxn) -> Result<T, InteractionError>,
) -> Result<T, InteractionError> {
    let mut refused: Option<InteractionError> = None;
    let result = crate::write::in_txn(it, |txn| {
        let mut guarded = CallerTxn { inner: txn, it, ctx, written: Vec::new(), refused: None };
        let out = f(&mut guarded);
        if let Some(e) = guarded.refused.take() {
            refused = Some(e);
            return Err(InteractionError::Store(StoreError::Aborted));
        }
        let out = out?;
        if it.config.audit_writes && !guarded.written.is_empty() {
            let entry = write_record(ctx, &guarded.written);
            guarded.inner.append_audit(std::slice::from_ref(&entry))?;
            ctx.audited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(out)
    });
    match (result, refused) {
        (_, Some(e)) => Err(e),
        (r, None) => r,
    }
}

fn write_record(ctx: &RequestContext, written: &[(String, tsunagu_store::Method)]) -> AuditEntry {
    use tsunagu_store::Method as M;
    let (subtype, action) = match written {
        [(_, M::Post)] => ("create", "C"),
        [(_, M::Put)] => ("update", "U"),
        [(_, M::Patch)] => ("patch", "U"),
        [(_, M::Delete)] => ("delete", "D"),
        _ => ("transaction", "E"),
    };
    let event = crate::audit::AuditEvent {
        caller: &ctx.caller,
        subtype,
        action,
        status: 200,
        entities: written.iter().map(|(r, _)| r.clone()).collect(),
        request: None,
    };
    crate::audit::audit_entry(&event, chrono::Utc::now().timestamp_millis())
}
