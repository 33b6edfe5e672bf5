//! Who is calling and what they may touch. A caller either has every access (an operator
//! tool, a server with authorization turned off) or holds SMART scopes. For one resource
//! type and permission, scopes reach all of that type, some of it (the patient's
//! compartment for `patient/` scopes, the resources matching a scope's `?param=value`
//! restriction), or none of it. "Some of it" is stated as search clauses, so the same
//! statement confines a search in SQL and decides in memory whether one resource (a read,
//! an included resource, a history entry, something about to be written) is visible.

use std::sync::Arc;

use serde_json::Value;
use tsunagu_auth::{Context, Permission, ScopeSet};
use tsunagu_store::{Clause, Condition, IndexEntry, ResourceVersion, SearchQuery};

use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::Interactions;

/// Who made a request, as the audit trail names them.
#[derive(Debug, Clone, Default)]
pub struct Agent {
    /// `client:<id>`, `user:<id>`, `operator:<tool>` or `anonymous`.
    pub who: String,
    pub client_id: Option<String>,
    /// The person behind a user token (`Practitioner/…`, `Patient/…`), when known.
    pub fhir_user: Option<String>,
    pub organization: Option<String>,
    /// The 10-digit 医療機関コード the caller acts for (JP-CLINS sharing).
    pub institution: Option<String>,
    pub role: Option<String>,
    /// The network address the request came from.
    pub address: Option<String>,
}

/// What a caller may reach.
#[derive(Debug, Clone)]
pub enum Access {
    /// Everything: operator tools, tests, a server with authorization off.
    All,
    /// What these scopes grant; `patient/` scopes reach only `patient`'s compartment.
    Scoped { scopes: Arc<ScopeSet>, patient: Option<String> },
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: Agent,
    pub access: Access,
}

impl Caller {
    /// A local operator tool (`tsunagu import`, `terminology load`, tests): every access,
    /// recorded in the audit trail under `operator:<tool>`.
    pub fn operator(tool: &str) -> Caller {
        Caller { agent: Agent { who: format!("operator:{tool}"), ..Default::default() }, access: Access::All }
    }

    pub fn is_unrestricted(&self) -> bool {
        matches!(self.access, Access::All)
    }

    /// The patient a `patient/` context is bound to.
    pub fn patient(&self) -> Option<&str> {
        match &self.access {
            Access::Scoped { patient, .. } => patient.as_deref(),
            Access::All => None,
        }
    }
}

/// How much of one type a permission reaches.
#[derive(Debug, Clone)]
pub(crate) enum Reach {
    All,
    /// The resources matching every clause.
    Where(Vec<Clause>),
}

/// Types that belong to no patient and that `patient/` scopes may read and search whole
/// (medications, the directory, definitions), never write. Any other type outside the Patient compartment (a Bundle,
/// a Binary) could hold anyone's data, so `patient/` scopes do not reach it.
const SHARED_TYPES: [&str; 22] = [
    "Medication",
    "Substance",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "HealthcareService",
    "Endpoint",
    "Questionnaire",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "NamingSystem",
    "StructureDefinition",
    "SearchParameter",
    "OperationDefinition",
    "CapabilityStatement",
    "ActivityDefinition",
    "PlanDefinition",
    "Library",
    "Measure",
    "MedicationKnowledge",
];

/// Whether a restricted caller may read resources of `ty` through their security context:
/// Binaries, when a scope without a restriction names Binary for reading.
pub(crate) fn reads_by_context(caller: &Caller, ty: &str) -> bool {
    let Access::Scoped { scopes, .. } = &caller.access else { return false };
    ty == "Binary" && scopes.reaching("Binary", Permission::Read).any(|s| s.restriction.is_empty())
}

/// The `Type/id` a Binary's `securityContext.reference` names on this server: relative,
/// with or without a version (`Type/id/_history/n`); absolute URLs name no local resource.
fn security_context(reference: &str) -> Option<(&str, &str)> {
    let mut parts = reference.split('/');
    let (ty, id) = (parts.next()?, parts.next()?);
    let rest: Vec<&str> = parts.collect();
    let valid = ty.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && ty.chars().all(|c| c.is_ascii_alphabetic())
        && !id.is_empty()
        && matches!(rest.as_slice(), [] | ["_history", _]);
    valid.then_some((ty, id))
}

fn verb(p: Permission) -> (&'static str, &'static str) {
    match p {
        Permission::Create => ("create", "作成"),
        Permission::Read => ("read", "読み取り"),
        Permission::Update => ("update", "更新"),
        Permission::Delete => ("delete", "削除"),
        Permission::Search => ("search", "検索"),
    }
}

pub(crate) fn denied(ty: &str, p: Permission) -> InteractionError {
    let (en, ja) = verb(p);
    InteractionError::forbidden(
        format!("The access token's scopes do not allow {en} on {ty}"),
        format!("アクセストークンのスコープでは {ty} の{ja}は許可されていません"),
    )
}

pub(crate) fn outside(ty: &str, id: &str, p: Permission) -> InteractionError {
    let (en, ja) = verb(p);
    InteractionError::forbidden(
        format!("{ty}/{id} is outside what the access token's scopes allow to {en}"),
        format!("{ty}/{id} はアクセストークンのスコープで{ja}できる範囲の外にあります"),
    )
}

impl Interactions {
    /// How much of `ty` the caller reaches with `p`. `confined_to`: the request is already
    /// confined to this patient's compartment (a compartment search, `$everything`), so a
    /// `patient/` scope for that patient adds no condition.
    pub(crate) fn reach(
        &self,
        caller: &Caller,
        ty: &str,
        p: Permission,
        confined_to: Option<&str>,
    ) -> Result<Reach, InteractionError> {
        let reach = self.scope_reach(caller, ty, p, confined_to)?;
        // The directory and definitions are not patient data: shared whatever submitted them.
        if SHARED_TYPES.contains(&ty) {
            return Ok(reach);
        }
        let sharing = self.sharing_clauses(caller, p);
        Ok(match reach {
            _ if sharing.is_empty() => reach,
            Reach::All => Reach::Where(sharing),
            Reach::Where(mut clauses) => {
                clauses.extend(sharing);
                Reach::Where(clauses)
            }
        })
    }

    /// [`Interactions::reach`] as the scopes alone decide it.
    fn scope_reach(
        &self,
        caller: &Caller,
        ty: &str,
        p: Permission,
        confined_to: Option<&str>,
    ) -> Result<Reach, InteractionError> {
        let Access::Scoped { scopes, patient } = &caller.access else { return Ok(Reach::All) };
        let mut persons: Option<Vec<String>> = None;
        let mut alternatives: Vec<Vec<Clause>> = Vec::new();
        for scope in scopes.reaching(ty, p) {
            let mut clauses = Vec::new();
            if scope.context == Context::Patient {
                let Some(pid) = patient else { continue };
                if confined_to != Some(pid.as_str()) {
                    let persons = persons.get_or_insert_with(|| self.persons_of_patient(pid));
                    match self.patient_clause(ty, pid, persons) {
                        Some(c) => clauses.push(c),
                        // Shared types are read by everyone; a patient's app never writes them.
                        None if SHARED_TYPES.contains(&ty) && matches!(p, Permission::Read | Permission::Search) => {}
                        None => continue,
                    }
                }
            }
            if !scope.restriction.is_empty() {
                let params = SearchParams { pairs: scope.restriction.clone() };
                match self.build_query(Some(ty), &params, true, "") {
                    Ok(parsed) => clauses.extend(parsed.query.clauses),
                    // A restriction this server cannot apply grants nothing.
                    Err(_) => continue,
                }
            }
            if clauses.is_empty() {
                return Ok(Reach::All);
            }
            alternatives.push(clauses);
        }
        combine(alternatives).ok_or_else(|| denied(ty, p))?.map(Reach::Where).ok_or_else(|| {
            InteractionError::forbidden(
                format!("The access token's scopes restrict {ty} in ways that cannot be joined in one request"),
                format!("アクセストークンのスコープによる {ty} の制限を 1 つのリクエストで組み合わせられません"),
            )
        })
    }

    /// `Ok` when the caller reaches any of `ty` with `p`.
    pub fn check_permission(&self, caller: &Caller, ty: &str, p: Permission) -> Result<(), InteractionError> {
        self.reach(caller, ty, p, None).map(|_| ())
    }

    /// `Ok` when the caller reaches all of `ty` with `p` (for operations that read across a
    /// type without a search to carry the caller's conditions).
    pub fn check_whole(&self, caller: &Caller, ty: &str, p: Permission) -> Result<(), InteractionError> {
        match self.reach(caller, ty, p, None)? {
            Reach::All => Ok(()),
            Reach::Where(_) => Err(InteractionError::forbidden(
                format!("The access token reaches only part of {ty}; this operation needs all of it"),
                format!("アクセストークンで扱えるのは {ty} の一部だけですが、この操作には全体への権限が必要です"),
            )),
        }
    }

    /// Membership of `pid`'s compartment for a resource of `ty`, widened to the JP-CLINS
    /// items of the same person (`persons`: the person keys the server tagged `pid` with, so
    /// a patient's app sees what every institution submitted about them); `None` when `ty`
    /// is not in the Patient compartment.
    pub(crate) fn patient_clause(&self, ty: &str, pid: &str, persons: &[String]) -> Option<Clause> {
        let def = self.model.compartment("Patient")?;
        let params: Vec<(String, String)> =
            def.members.get(ty).into_iter().flatten().map(|code| (ty.to_string(), code.to_string())).collect();
        let mut any = Vec::new();
        if ty == "Patient" {
            any.push(Condition::Id(pid.to_string()));
        }
        if !params.is_empty() {
            any.push(Condition::Compartment {
                params,
                target_type: "Patient".into(),
                target_id: Some(pid.to_string()),
            });
        }
        if !any.is_empty() {
            any.extend(persons.iter().map(|k| crate::clins::sharing::person_tag(k)));
        }
        (!any.is_empty()).then_some(Clause { any })
    }

    /// Whether the caller may see a stored version; deleted versions only with full reach.
    pub(crate) fn may_see_version(&self, caller: &Caller, p: Permission, v: &ResourceVersion) -> bool {
        if caller.is_unrestricted() {
            return true;
        }
        self.may_see_by_scopes(caller, p, v) || (p == Permission::Read && self.binary_context_visible(caller, v))
    }

    /// [`Interactions::may_see_version`] as the scopes and sharing alone decide it.
    fn may_see_by_scopes(&self, caller: &Caller, p: Permission, v: &ResourceVersion) -> bool {
        match self.reach(caller, &v.resource_type, p, None) {
            Err(_) => false,
            // The hot path: a caller that reaches the whole type needs no look inside.
            Ok(Reach::All) => true,
            Ok(Reach::Where(_)) if v.deleted => false,
            Ok(Reach::Where(clauses)) => match serde_json::from_slice::<Value>(&v.body) {
                Ok(r) => {
                    let codes = params_in(&clauses, &v.resource_type);
                    let entries = self.search.entries_of(&v.resource_type, &r, &codes);
                    tsunagu_search::resource_matches(&clauses, &v.resource_type, &v.id, &entries).unwrap_or(false)
                }
                Err(_) => false,
            },
        }
    }

    /// Fails unless the caller may see (with `p`) this stored version.
    pub(crate) fn check_visible(
        &self,
        caller: &Caller,
        p: Permission,
        v: &ResourceVersion,
    ) -> Result<(), InteractionError> {
        if p == Permission::Read && !caller.is_unrestricted() && self.binary_context_visible(caller, v) {
            return Ok(());
        }
        self.reach(caller, &v.resource_type, p, None)?;
        if self.may_see_version(caller, p, v) {
            Ok(())
        } else {
            Err(outside(&v.resource_type, &v.id, p))
        }
    }

    /// R4 `Binary.securityContext`: a Binary is read as the resource it names would be. A
    /// restricted caller whose scopes name Binary for reading, without a restriction, reads
    /// one whose `securityContext` (a relative `Type/id`) it may read: a patient's app the
    /// content of its own documents, which `patient/` scopes reach no other way. A Binary
    /// without one stays as the scopes decide; a context naming a Binary grants nothing.
    fn binary_context_visible(&self, caller: &Caller, v: &ResourceVersion) -> bool {
        if v.deleted || !reads_by_context(caller, &v.resource_type) {
            return false;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&v.body) else { return false };
        let Some((ty, id)) = body["securityContext"]["reference"].as_str().and_then(security_context) else {
            return false;
        };
        // The context stands in for the scopes only: the Binary's own sharing rules (its
        // submitter's tags, consent) still apply, and a context everyone reads (a shared
        // type) grants nothing.
        if SHARED_TYPES.contains(&ty) {
            return false;
        }
        let sharing = self.sharing_clauses(caller, Permission::Read);
        if !sharing.is_empty() {
            let codes = params_in(&sharing, "Binary");
            let entries = self.search.entries_of("Binary", &body, &codes);
            if !tsunagu_search::resource_matches(&sharing, "Binary", &v.id, &entries).unwrap_or(false) {
                return false;
            }
        }
        match self.store.read(ty, id) {
            Ok(Some(target)) if ty != "Binary" && !target.deleted => {
                self.may_see_by_scopes(caller, Permission::Read, &target)
            }
            _ => false,
        }
    }

    /// Whether index entries about to be written for `ty/id` stay within what `p` reaches.
    pub(crate) fn may_write(
        &self,
        caller: &Caller,
        p: Permission,
        ty: &str,
        id: &str,
        entries: &[IndexEntry],
    ) -> Result<(), InteractionError> {
        match self.reach(caller, ty, p, None)? {
            Reach::All => Ok(()),
            Reach::Where(clauses) => match tsunagu_search::resource_matches(&clauses, ty, id, entries) {
                Ok(true) => Ok(()),
                _ => Err(outside(ty, id, p)),
            },
        }
    }

    /// Confines a query to what the caller may search: its own type's reach (unless
    /// `confined_to` already covers it) and, inside every chain and `_has`, the reach of
    /// the type probed there, so no condition can test resources the caller may not see.
    /// A chain arm through a type the caller may not search is dropped; a condition left
    /// with no arm is refused.
    pub(crate) fn confine(
        &self,
        caller: &Caller,
        q: &mut SearchQuery,
        confined_to: Option<&str>,
    ) -> Result<(), InteractionError> {
        if caller.is_unrestricted() {
            return Ok(());
        }
        if let Some(ty) = q.resource_type.clone() {
            if let Reach::Where(clauses) = self.reach(caller, &ty, Permission::Search, confined_to)? {
                let implied: Vec<Clause> = clauses.into_iter().filter(|c| !implied_by(c, &q.clauses, &ty)).collect();
                q.clauses.extend(implied);
            }
        }
        for clause in &mut q.clauses {
            let mut refused: Option<InteractionError> = None;
            let mut kept = Vec::with_capacity(clause.any.len());
            for mut c in std::mem::take(&mut clause.any) {
                let probed = match &mut c {
                    Condition::Chain { target_type, query, .. } => Some((target_type.clone(), query)),
                    Condition::Has { source_type, query, .. } => Some((source_type.clone(), query)),
                    _ => None,
                };
                match probed {
                    None => kept.push(c),
                    Some((ty, query)) => {
                        query.resource_type.get_or_insert(ty.clone());
                        match self.confine(caller, query, None) {
                            Ok(()) => kept.push(c),
                            Err(e) => refused = Some(e),
                        }
                    }
                }
            }
            if kept.is_empty() {
                if let Some(e) = refused {
                    return Err(e);
                }
            }
            clause.any = kept;
        }
        Ok(())
    }
}

/// Whether `clause` is a compartment condition the query already implies: it asks
/// for one patient through one of that compartment's own parameters
/// (`Observation?subject=Patient/1` is in Patient/1's compartment), so the condition
/// would only cost a second probe.
fn implied_by(clause: &Clause, query: &[Clause], ty: &str) -> bool {
    let [Condition::Compartment { params, target_type, target_id: Some(target_id) }] = clause.any.as_slice() else {
        return false;
    };
    query.iter().any(|q| match q.any.as_slice() {
        [Condition::Index {
            param,
            test: tsunagu_store::Test::Reference { target_type: Some(t), target_id: Some(id), .. },
            negate: false,
        }] => t == target_type && id == target_id && params.iter().any(|(member, code)| member == ty && code == param),
        _ => false,
    })
}

/// The search parameters of `ty` that clauses test (what must be extracted to decide them).
fn params_in<'a>(clauses: &'a [Clause], ty: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for c in clauses.iter().flat_map(|c| &c.any) {
        match c {
            // `identifier:of-type` and the like come from the base parameter's extraction.
            Condition::Index { param, .. } | Condition::Missing { param, .. } | Condition::DateWindow { param, .. } => {
                out.push(param.split(':').next().unwrap_or(param))
            }
            Condition::Compartment { params, .. } => {
                out.extend(params.iter().filter(|(member, _)| member == ty).map(|(_, code)| code.as_str()))
            }
            // Decided without index entries, or (chains, _has, full text) not in memory.
            _ => {}
        }
    }
    out
}

/// One statement for alternatives that each grant the resources matching all their
/// clauses. Clauses every alternative has are kept as they are; what remains must be one
/// clause per alternative, joined into one OR. `None` inside: not expressible; `None`
/// outside: no alternatives at all.
fn combine(mut alternatives: Vec<Vec<Clause>>) -> Option<Option<Vec<Clause>>> {
    match alternatives.len() {
        0 => return None,
        1 => return Some(alternatives.pop()),
        _ => {}
    }
    let key = |c: &Clause| format!("{c:?}");
    let first: Vec<String> = alternatives[0].iter().map(key).collect();
    let common: Vec<String> =
        first.into_iter().filter(|k| alternatives.iter().all(|a| a.iter().any(|c| key(c) == *k))).collect();
    let mut out: Vec<Clause> = alternatives[0].iter().filter(|c| common.contains(&key(c))).cloned().collect();
    let mut joined = Vec::new();
    for alt in &alternatives {
        let rest: Vec<&Clause> = alt.iter().filter(|c| !common.contains(&key(c))).collect();
        match rest.as_slice() {
            // This alternative needs only the common clauses: it is the widest.
            [] => return Some(Some(out)),
            [one] => joined.extend(one.any.iter().cloned()),
            _ => return Some(None),
        }
    }
    out.push(Clause { any: joined });
    Some(Some(out))
}
