//! The FHIR RESTful interactions of R4 `http.html`, independent of HTTP: read, vread,
//! create, update, delete (each also conditional), patch, history, search, and the
//! `transaction` and `batch` Bundles.
//!
//! This crate owns FHIR write semantics: server-assigned ids, `meta.versionId` and
//! `meta.lastUpdated`, optimistic locking, conditional matching inside the write
//! transaction, reference rewriting in transactions, the shape of history and search
//! Bundles, and the conversion of every error to an OperationOutcome (`outcome.rs`, the
//! only place that does it). It never sees HTTP: the server crate turns requests into
//! calls here and results into responses. Storage goes through `tsunagu_store::Store`.

mod access;
mod access_txn;
mod audit;
mod audit_api;
mod bundle;
mod care_dates;
mod check;
pub mod clins;
mod conditional;
mod error;
pub mod export;
mod guard;
mod history;
mod import;
mod instant;
mod memory;
pub mod operations;
mod outcome;
mod reindex;
mod resource;
mod restore;
mod search;
mod terminology_ops;
mod terminology_sync;
mod write;

pub use access::{Access, Agent, Caller};
pub use audit::{audit_entry, AuditEvent, AuditLog};
pub use check::{
    check_data, check_snapshot, check_store, CheckOptions, CheckProblem, CheckReport, CheckStage, IndexTableReport,
    ProblemKind,
};
pub use error::{ContentIssue, InteractionError, Lang};
pub use export::{ExportConfig, ExportLevel, ExportStatus, Exports};
pub use import::{needs_transaction, Staged};
pub use instant::{format_instant, http_date, parse_http_date, parse_range};
pub use memory::{MemoryBudget, MemoryHold};
pub use outcome::{information, operation_outcome, validation_outcome};
pub use reindex::ReindexStep;
pub use resource::{NoCheck, ResourceCheck};
pub use restore::PreparedVersion;
pub use search::{decode as percent_decode, decodes_as_utf8, not_utf8, SearchParams};
pub use terminology_ops::{is_terminology_operation, OperationInput};
pub use tsunagu_auth::Permission;
pub use tsunagu_limits::{Limit, LimitExceeded, Limits};
pub use write::{PatchBody, PatchTarget, WriteKind, Written};

use std::sync::Arc;
use tsunagu_model::Model;
use tsunagu_store::{ResourceVersion, Store};

/// Settings of the interaction layer.
#[derive(Clone)]
pub struct InteractionConfig {
    /// Page size when `_count` is absent.
    pub default_count: usize,
    /// Largest page a client may ask for.
    pub max_count: usize,
    /// What one request may ask for (search shape, nesting, issues listed, …).
    pub limits: tsunagu_limits::Limits,
    /// Record every write in the audit trail, in its own transaction (on except in the
    /// benchmark that measures what it costs).
    pub audit_writes: bool,
    /// JP-CLINS: whether another institution sees a person's shared items when no current
    /// Consent of theirs says either way (`consent_default = "allow"`); default deny.
    pub consent_default_allow: bool,
}

impl Default for InteractionConfig {
    fn default() -> Self {
        InteractionConfig {
            default_count: 50,
            max_count: 1000,
            limits: Default::default(),
            audit_writes: true,
            consent_default_allow: false,
        }
    }
}

/// Who is asking, and how they want answers.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Base URL of the server, without a trailing slash (`http://localhost:8080/fhir`).
    pub base: String,
    pub lang: Lang,
    /// `Prefer: handling=strict`: unknown search parameters are errors, not ignored.
    pub strict: bool,
    /// `Prefer: return=…`, for bundle entries.
    pub return_pref: ReturnPreference,
    /// Who is asking, and what they may reach.
    pub caller: Arc<Caller>,
    /// Audit records written inside this request's write transactions (so the server
    /// does not record those requests a second time).
    pub audited: Arc<std::sync::atomic::AtomicUsize>,
    /// The most a search page may take (ms), when less than `max_search_ms`: what a
    /// Bundle's searches have left of `max_bundle_search_ms` for a GET entry. Cuts the
    /// page on PostgreSQL (its statement timeout); SQLite pages keep their step ceiling.
    pub search_ms_cap: Option<u64>,
    /// Bytes of resources this request has read into its response, against
    /// `max_page_bytes`; shared by the entries of a Bundle (clones share it). `None`: no
    /// bound (the contexts of tools, which page on their own and may read far more than
    /// one response over many calls).
    pub read_bytes: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// What this request holds of the server's `max_memory_bytes` (`memory.rs`); shared by
    /// its clones, given back when the last is dropped. `None`: not counted (tools).
    pub memory: Option<Arc<MemoryHold>>,
}

impl RequestContext {
    /// A context with every access, recorded as the operator (tools and tests).
    pub fn new(base: impl Into<String>) -> Self {
        RequestContext::for_caller(base, Caller::operator("local"))
    }

    pub fn for_caller(base: impl Into<String>, caller: Caller) -> Self {
        RequestContext {
            base: base.into().trim_end_matches('/').to_string(),
            lang: Lang::En,
            strict: false,
            return_pref: ReturnPreference::Representation,
            caller: Arc::new(caller),
            audited: Default::default(),
            search_ms_cap: None,
            read_bytes: None,
            memory: None,
        }
    }

    /// The byte bound of the next page this request reads: what it has left of `max`
    /// (`max_page_bytes`; 0: none). Its first page takes its first resource whatever its
    /// size; a later one (a Bundle's next read entry) takes only what fits. Cut further to
    /// the room left in `max_memory_bytes` (see [`RequestContext::page_cut_by_memory`]).
    pub(crate) fn page_cap(&self, max: usize) -> Option<tsunagu_store::ByteCap> {
        let left = self.page_left(max);
        match (left, self.memory.as_ref().and_then(|m| m.page_room())) {
            (Some(cap), Some(room)) => Some(tsunagu_store::ByteCap { max: cap.max.min(room), ..cap }),
            (None, Some(room)) if self.read_bytes.is_some() => {
                Some(tsunagu_store::ByteCap { max: room, first_always: self.spent() == 0 })
            }
            (left, _) => left,
        }
    }

    /// Whether a page read under `cap` and cut by its bytes was cut by the memory budget
    /// rather than by `max_page_bytes`: it then names `max_memory_bytes`.
    pub(crate) fn page_cut_by_memory(&self, max: usize, cap: Option<tsunagu_store::ByteCap>) -> bool {
        let Some(cap) = cap else { return false };
        self.page_left(max).is_none_or(|left| cap.max < left.max)
    }

    /// What this request has left of `max` (`max_page_bytes`; 0: none).
    fn page_left(&self, max: usize) -> Option<tsunagu_store::ByteCap> {
        self.read_bytes.as_ref()?;
        let spent = self.spent();
        (max > 0).then(|| tsunagu_store::ByteCap { max: (max as u64).saturating_sub(spent), first_always: spent == 0 })
    }

    fn spent(&self) -> u64 {
        self.read_bytes.as_ref().map_or(0, |r| r.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Counts the bodies of `versions` as read into the response.
    pub(crate) fn spend(&self, versions: &[tsunagu_store::ResourceVersion]) -> Result<(), InteractionError> {
        self.spend_bytes(tsunagu_store::body_bytes(versions))
    }

    /// Counts `n` bytes of resources as read into the response, and waits for room in
    /// `max_memory_bytes` to build the response from them.
    pub(crate) fn spend_bytes(&self, n: u64) -> Result<(), InteractionError> {
        if let Some(read) = &self.read_bytes {
            read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        match &self.memory {
            Some(m) => m.spend_page(n),
            None => Ok(()),
        }
    }

    /// Fails a Bundle's read entry, before it reads, when the request has nothing left
    /// of `max` (`max_page_bytes`): an earlier entry used it up, or was refused by it.
    pub(crate) fn check_room(&self, max: usize) -> Result<(), InteractionError> {
        match self.page_left(max) {
            Some(cap) if !cap.first_always && cap.max == 0 => Err(self.refuse_rest(max)),
            _ => Ok(()),
        }
    }

    /// Counts one resource a Bundle's read entry read: past `max` after an earlier entry
    /// read something, the entry fails naming the limit, and so does every later one.
    pub(crate) fn spend_one(&self, max: usize, v: &tsunagu_store::ResourceVersion) -> Result<(), InteractionError> {
        if self.page_left(max).is_some_and(|c| !c.first_always && v.body.len() as u64 > c.max) {
            return Err(self.refuse_rest(max));
        }
        self.spend(std::slice::from_ref(v))
    }

    /// The limit's error for a read past `max`, which also uses up what is left: nothing
    /// more is read in this request.
    pub(crate) fn refuse_rest(&self, max: usize) -> InteractionError {
        if let Some(read) = &self.read_bytes {
            read.fetch_max(max as u64, std::sync::atomic::Ordering::Relaxed);
        }
        tsunagu_limits::LimitExceeded::new(tsunagu_limits::Limit::PageBytes, max).into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnPreference {
    Minimal,
    Representation,
    OperationOutcome,
}

/// The FHIR interactions over one store.
pub struct Interactions {
    store: Arc<dyn Store>,
    model: &'static Model,
    /// Checks content before it is written (base structure, and later profiles).
    check: Arc<dyn ResourceCheck>,
    /// Validates against profiles whatever `check` is (JP-CLINS submissions); `None`:
    /// `check` itself, if it can.
    profiles: Option<Arc<dyn ResourceCheck>>,
    /// Consents and whether submissions exist, for the JP-CLINS sharing rules.
    sharing: clins::SharingState,
    /// Verifies signed submissions; `None`: a signed submission is refused.
    signatures: Option<Arc<dyn clins::SignatureCheck>>,
    /// Search parameters: index extraction on write, query parsing on search.
    search: Arc<tsunagu_search::SearchRegistry>,
    /// Code systems, value sets and concept maps: from packages, and kept in step with the
    /// stored CodeSystem, ValueSet and ConceptMap resources.
    terminology: Arc<tsunagu_terminology::Terminology>,
    /// The store's newest write (`seq`) when stored terminology was last loaded: where
    /// following other nodes' writes starts.
    terminology_seen: std::sync::atomic::AtomicI64,
    /// The CapabilityStatement, built by the layer that serves `/metadata` (it knows the
    /// server's authorization), for a Bundle's `GET metadata` entry.
    capability: std::sync::OnceLock<CapabilityStatement>,
    pub config: InteractionConfig,
}

/// Builds what `GET metadata` answers for a base URL and a `mode` (R4 http.html#capabilities).
pub type CapabilityStatement =
    Box<dyn Fn(&Interactions, &str, Option<&str>) -> Result<serde_json::Value, InteractionError> + Send + Sync>;

impl Interactions {
    /// Sets what a Bundle's `GET metadata` entry answers (once; later calls are ignored).
    pub fn serve_capability(&self, build: CapabilityStatement) {
        let _ = self.capability.set(build);
    }

    /// The CapabilityStatement for `base`, when the serving layer has set how it is built.
    pub(crate) fn capability_statement(
        &self,
        base: &str,
        mode: Option<&str>,
    ) -> Option<Result<serde_json::Value, InteractionError>> {
        self.capability.get().map(|build| build(self, base, mode))
    }

    pub fn new(store: Arc<dyn Store>, check: Arc<dyn ResourceCheck>, config: InteractionConfig) -> Self {
        Interactions {
            store,
            model: tsunagu_model::r4(),
            check,
            profiles: None,
            sharing: Default::default(),
            signatures: None,
            search: Arc::new(tsunagu_search::SearchRegistry::new()),
            terminology: Arc::new(tsunagu_terminology::Terminology::default()),
            terminology_seen: Default::default(),
            capability: Default::default(),
            config,
        }
    }

    /// Uses this terminology service (built from the configured packages) for terminology
    /// operations, token `:in`/`:below` searches and stored terminology resources.
    pub fn with_terminology(mut self, terminology: Arc<tsunagu_terminology::Terminology>) -> Self {
        self.terminology = terminology;
        self
    }

    /// Validates JP-CLINS submissions with `check` (which must answer
    /// [`ResourceCheck::check_profiles`]), whatever the write check is.
    pub fn with_profile_validation(mut self, check: Arc<dyn ResourceCheck>) -> Self {
        self.profiles = Some(check);
        self
    }

    /// Verifies the signatures of signed JP-CLINS submissions with `check`.
    pub fn with_signature_check(mut self, check: Arc<dyn clins::SignatureCheck>) -> Self {
        self.signatures = Some(check);
        self
    }

    pub fn terminology(&self) -> &Arc<tsunagu_terminology::Terminology> {
        &self.terminology
    }

    /// Adds the stored CodeSystem, ValueSet and ConceptMap resources to the terminology
    /// service (at start); returns how many it took.
    pub fn load_stored_terminology(&self) -> Result<usize, InteractionError> {
        // Noted before loading: a write that lands meanwhile is taken again by the follower,
        // never missed.
        let high = self.store.pinned()?.high_seq();
        let n = terminology_sync::load_stored(self.store.as_ref(), &self.terminology)?;
        self.terminology_seen.store(high, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// Keeps the terminology service in step with CodeSystem, ValueSet and ConceptMap
    /// resources other servers write to a shared database (PostgreSQL with several nodes):
    /// a thread looks for versions written since the last look every `every`, and stops
    /// when the last handle to these interactions is dropped. Writes made through this
    /// node are taken at once, as always.
    pub fn follow_other_nodes(self: &Arc<Self>, every: std::time::Duration) {
        let weak = Arc::downgrade(self);
        let mut seen = self.terminology_seen.load(std::sync::atomic::Ordering::Relaxed);
        let spawned = std::thread::Builder::new().name("tsunagu-follow".into()).spawn(move || loop {
            std::thread::sleep(every);
            let Some(fhir) = weak.upgrade() else { return };
            match terminology_sync::load_after(fhir.store.as_ref(), &fhir.terminology, seen) {
                Ok((_, high)) => seen = high,
                Err(e) => tracing::warn!("following other nodes' terminology writes: {e}"),
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the thread that follows other nodes' writes: {e}");
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The search parameter registry (for the CapabilityStatement and reindexing).
    pub fn search_registry(&self) -> &tsunagu_search::SearchRegistry {
        &self.search
    }

    /// Fails unless `ty` is a concrete resource type this server serves.
    pub fn known_type(&self, ty: &str) -> Result<(), InteractionError> {
        if self.model.is_resource_type(ty) {
            Ok(())
        } else {
            Err(InteractionError::UnknownType(ty.to_string()))
        }
    }

    /// The current version, if the caller may read it; `Gone` when it was deleted.
    pub fn read(&self, ty: &str, id: &str, ctx: &RequestContext) -> Result<ResourceVersion, InteractionError> {
        let whole = self.reaches_whole(&ctx.caller, ty)?;
        match self.read_current(ty, id) {
            Ok(v) => {
                self.check_visible(&ctx.caller, Permission::Read, &v)?;
                Ok(v)
            }
            // A caller that sees only part of a type learns nothing of the rest, not even
            // whether an id exists or was deleted.
            Err(InteractionError::NotFound(..) | InteractionError::Gone(..)) if !whole => {
                Err(access::outside(ty, id, Permission::Read))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the caller reads all of `ty` (an error when none of it; a Binary it may read
    /// through its security context is part).
    fn reaches_whole(&self, caller: &Caller, ty: &str) -> Result<bool, InteractionError> {
        self.known_type(ty)?;
        match self.reach(caller, ty, Permission::Read, None) {
            Ok(reach) => Ok(matches!(reach, access::Reach::All)),
            Err(_) if access::reads_by_context(caller, ty) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The current version, whoever asks; `Gone` when it was deleted.
    pub(crate) fn read_current(&self, ty: &str, id: &str) -> Result<ResourceVersion, InteractionError> {
        self.known_type(ty)?;
        match self.store.read(ty, id)? {
            None => Err(InteractionError::NotFound(ty.into(), id.into())),
            Some(v) if v.deleted => Err(InteractionError::Gone(ty.into(), id.into())),
            Some(v) => Ok(v),
        }
    }

    pub fn vread(
        &self,
        ty: &str,
        id: &str,
        version: &str,
        ctx: &RequestContext,
    ) -> Result<ResourceVersion, InteractionError> {
        let whole = self.reaches_whole(&ctx.caller, ty)?;
        let hidden = || access::outside(ty, id, Permission::Read);
        // A version that is no number is not there either; named as it was asked for.
        let not_found = || InteractionError::VersionNotFound(ty.into(), id.into(), version.into());
        let Ok(n) = version.parse::<u64>() else { return Err(not_found()) };
        match self.store.vread(ty, id, n)? {
            None | Some(ResourceVersion { deleted: true, .. }) if !whole => Err(hidden()),
            None => Err(not_found()),
            Some(v) if v.deleted => Err(InteractionError::Gone(ty.into(), id.into())),
            Some(v) => {
                self.check_visible(&ctx.caller, Permission::Read, &v)?;
                Ok(v)
            }
        }
    }
}

/// `W/"3"`.
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// Parses `W/"3"` or `"3"` or `3`.
pub fn parse_etag(s: &str) -> Option<u64> {
    s.trim().trim_start_matches("W/").trim_matches('"').parse().ok()
}
