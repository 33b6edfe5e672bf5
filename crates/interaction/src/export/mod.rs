//! FHIR Bulk Data Access 2.0 export (`$export` at system, Patient and Group level): the
//! kick-off checks (parameters, types, what the caller may reach), the jobs and their
//! state on disk, status, cancellation, the output files and their expiry. The run itself
//! is `run.rs`; de-identification is `tsunagu-deid`.
//!
//! **One snapshot.** The kick-off pins a read view of the store (`Store::pinned`: one
//! SQLite read transaction, held by the job's thread until it ends). Every page of every
//! type is read from that view, so the output is the data as it was at `transactionTime`
//! whatever is written meanwhile, including what the caller's scopes and `_typeFilter`
//! test (the indexes are read in the same snapshot). Reading by `seq` with a history
//! fallback was the alternative; it would have tested search conditions against the
//! *current* index rows of resources changed since, which a snapshot cannot get wrong.
//! The cost: the WAL cannot be checkpointed past the view while a job runs.
//!
//! **Access.** Each type is exported through the same search machinery as a search by the
//! caller: its query is confined by `confine` (scopes, `patient/` compartments, scope
//! restrictions, JP-CLINS sharing clauses), so an export yields exactly what the caller
//! could page through by searching, never more. A type named in `_type` that the caller
//! may not search is refused (403); without `_type`, such types are left out.
//!
//! **Researchers** hold no scopes (they may read and search nothing); an export is the one
//! thing their role may do, always de-identified (`_deidentify=default` is forced), over
//! every type but AuditEvent with the reach of `system/*.rs` (JP-CLINS sharing clauses
//! still apply). That grant exists only inside this module.
//!
//! **Jobs on disk.** `<dir>/<job>/job.json` holds a job's state; output files sit beside
//! it. At start a job still marked running is marked failed (its partial files removed),
//! so nothing half-written is ever served; finished jobs are served until they expire.

mod run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tsunagu_auth::{Permission, ScopeSet};
use tsunagu_store::{Clause, Condition, SearchQuery};

use crate::access::Reach;
use crate::error::InteractionError;
use crate::search::SearchParams;
use crate::{Access, Caller, Interactions, RequestContext};

/// Bulk export settings (`[export]` in `tsunagu.toml`).
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Where jobs and their files live (`<data>/export`).
    pub dir: PathBuf,
    /// An output file is closed and the next one started past this many bytes.
    pub max_file_bytes: u64,
    /// Finished jobs and their files are removed this long after they finished.
    pub retention_secs: u64,
    /// Jobs running at once; past it a kick-off answers 429.
    pub max_running_jobs: usize,
    /// Resources read from the store per page (memory per job is about one page).
    pub page_size: usize,
    /// Members of a Group queried together (larger Groups are read in several passes).
    pub group_chunk: usize,
    /// The `Retry-After` (s) suggested while a job runs.
    pub retry_after_secs: u64,
    /// De-identification policies besides the built-in `default`, by name
    /// (`_deidentify=NAME`; `[export.deidentify.NAME]` in tsunagu.toml).
    pub policies: Vec<tsunagu_deid::Policy>,
}

impl ExportConfig {
    pub fn new(dir: impl Into<PathBuf>) -> ExportConfig {
        ExportConfig {
            dir: dir.into(),
            max_file_bytes: 64 * 1024 * 1024,
            retention_secs: 24 * 3600,
            max_running_jobs: 2,
            page_size: 500,
            group_chunk: 100,
            retry_after_secs: 2,
            policies: Vec::new(),
        }
    }
}

/// Where an export was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    System,
    Patient,
    Group(String),
}

/// A job's state as it is kept on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Running,
    Completed,
    Failed,
}

impl Status {
    fn as_str(&self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
struct OutputFile {
    ty: String,
    file: String,
    count: u64,
}

#[derive(Debug, Clone)]
struct JobState {
    id: String,
    owner: String,
    status: Status,
    request: String,
    transaction_time_ms: i64,
    finished_ms: Option<i64>,
    outputs: Vec<OutputFile>,
    progress: String,
    failure: Option<(String, String)>,
    /// `(policy, k)` of a de-identified export; k `None` with no Patient exported.
    deid: Option<(String, Option<u64>)>,
}

impl JobState {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "owner": self.owner,
            "status": self.status.as_str(),
            "request": self.request,
            "transactionTime": self.transaction_time_ms,
            "finished": self.finished_ms,
            "output": self.outputs.iter().map(|o| json!({"type": o.ty, "file": o.file, "count": o.count})).collect::<Vec<_>>(),
            "failure": self.failure.as_ref().map(|(en, ja)| json!({"en": en, "ja": ja})),
            "deidentification": self.deid.as_ref().map(|(p, k)| json!({"policy": p, "k": k})),
        })
    }

    fn from_json(v: &Value) -> Option<JobState> {
        Some(JobState {
            id: v["id"].as_str()?.to_string(),
            owner: v["owner"].as_str()?.to_string(),
            status: match v["status"].as_str()? {
                "completed" => Status::Completed,
                "failed" => Status::Failed,
                _ => Status::Running,
            },
            request: v["request"].as_str().unwrap_or("").to_string(),
            transaction_time_ms: v["transactionTime"].as_i64().unwrap_or(0),
            finished_ms: v["finished"].as_i64(),
            outputs: v["output"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| {
                    Some(OutputFile {
                        ty: o["type"].as_str()?.to_string(),
                        file: o["file"].as_str()?.to_string(),
                        count: o["count"].as_u64().unwrap_or(0),
                    })
                })
                .collect(),
            progress: String::new(),
            failure: v["failure"]
                .as_object()
                .map(|f| (f["en"].as_str().unwrap_or("").to_string(), f["ja"].as_str().unwrap_or("").to_string())),
            deid: v["deidentification"]
                .as_object()
                .map(|d| (d["policy"].as_str().unwrap_or("default").to_string(), d["k"].as_u64())),
        })
    }
}

struct Job {
    state: Mutex<JobState>,
    cancelled: AtomicBool,
}

/// What the status URL answers.
#[derive(Debug)]
pub enum ExportStatus {
    /// Still running: `X-Progress` and `Retry-After`.
    InProgress { progress: String, retry_after_secs: u64 },
    /// The completion manifest.
    Complete(Value),
}

/// One type's export: the queries whose union (by write order, without repeats) is
/// exported.
pub(crate) struct TypePlan {
    pub ty: String,
    pub queries: Vec<SearchQuery>,
}

/// The bulk export jobs of one server.
pub struct Exports {
    fhir: Arc<Interactions>,
    config: ExportConfig,
    key: Vec<u8>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    me: Weak<Exports>,
}

const JOB_FILE: &str = "job.json";
const KEY_FILE: &str = "deid.key";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn io_error(what: &str, e: std::io::Error) -> InteractionError {
    InteractionError::ExportFailed {
        en: format!("bulk export storage: {what}: {e}"),
        ja: format!("一括エクスポートの保存領域: {what}: {e}"),
    }
}

/// The job's owner: the client that started it (or the user/operator without one).
fn owner_of(caller: &Caller) -> String {
    caller.agent.client_id.clone().unwrap_or_else(|| caller.agent.who.clone())
}

fn not_found(job: &str) -> InteractionError {
    InteractionError::NotFound("$export-status".into(), job.to_string())
}

impl Exports {
    /// Opens (creating) the export directory: the de-identification key is created once
    /// (owner-only), jobs left running by a previous process are marked failed and their
    /// partial files removed, and expired jobs are removed.
    pub fn open(fhir: Arc<Interactions>, config: ExportConfig) -> Result<Arc<Exports>, InteractionError> {
        std::fs::create_dir_all(&config.dir).map_err(|e| io_error("create", e))?;
        let key = load_or_create_key(&config.dir.join(KEY_FILE))?;
        let exports =
            Arc::new_cyclic(|me| Exports { fhir, config, key, jobs: Mutex::new(HashMap::new()), me: me.clone() });
        exports.recover()?;
        Ok(exports)
    }

    pub fn config(&self) -> &ExportConfig {
        &self.config
    }

    fn job_dir(&self, id: &str) -> PathBuf {
        self.config.dir.join(id)
    }

    fn save(&self, st: &JobState) -> Result<(), InteractionError> {
        let dir = self.job_dir(&st.id);
        let tmp = dir.join("job.json.tmp");
        std::fs::write(&tmp, st.to_json().to_string()).map_err(|e| io_error("write job state", e))?;
        std::fs::rename(&tmp, dir.join(JOB_FILE)).map_err(|e| io_error("write job state", e))
    }

    fn recover(&self) -> Result<(), InteractionError> {
        let entries = std::fs::read_dir(&self.config.dir).map_err(|e| io_error("list", e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let Some(mut st) = read_state(&path) else {
                // Not a job (or its state never got written): nothing can serve it.
                let _ = std::fs::remove_dir_all(&path);
                continue;
            };
            if st.status == Status::Running {
                st.status = Status::Failed;
                st.finished_ms = Some(now_ms());
                st.outputs.clear();
                st.failure = Some((
                    "the server stopped while this export was running; start it again".into(),
                    "エクスポートの実行中にサーバが停止しました。もう一度開始してください".into(),
                ));
                remove_outputs(&path);
                self.save(&st)?;
            }
        }
        self.sweep();
        Ok(())
    }

    /// Removes finished jobs older than the retention time, with their files.
    pub fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.config.dir) else { return };
        let horizon = now_ms() - (self.config.retention_secs as i64).saturating_mul(1000);
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(st) = read_state(&path) else { continue };
            if st.status != Status::Running && st.finished_ms.is_some_and(|f| f <= horizon) {
                self.jobs.lock().remove(&st.id);
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }

    /// Kick-off: checks everything a client can get wrong, pins the snapshot, starts the
    /// job on a thread of its own and answers its id.
    pub fn kickoff(
        &self,
        level: ExportLevel,
        params: &SearchParams,
        request_url: &str,
        ctx: &RequestContext,
    ) -> Result<String, InteractionError> {
        self.sweep();
        let running = self.jobs.lock().values().filter(|j| j.state.lock().status == Status::Running).count();
        if running >= self.config.max_running_jobs {
            return Err(InteractionError::TooManyRequests {
                en: format!("{running} bulk exports are running already (max_running_jobs); try again later"),
                ja: format!(
                    "一括エクスポートがすでに {running} 件実行中です（max_running_jobs）。後でもう一度お試しください"
                ),
            });
        }
        let researcher = ctx.caller.agent.role.as_deref() == Some("researcher");
        let deid = match (params.get("_deidentify"), researcher) {
            (None, false) => None,
            (None, true) => Some(tsunagu_deid::Policy::default()),
            (Some(p), _) => match tsunagu_deid::Policy::named(p)
                .or_else(|| self.config.policies.iter().find(|q| q.name == p).cloned())
            {
                Some(policy) => Some(policy),
                None => {
                    let known: Vec<&str> = std::iter::once("default")
                        .chain(self.config.policies.iter().map(|q| q.name.as_str()))
                        .collect();
                    return Err(InteractionError::bad_request(
                        format!(
                            "_deidentify '{p}' is not a de-identification policy of this server ({})",
                            known.join(", ")
                        ),
                        format!("_deidentify '{p}' はこのサーバの匿名化ポリシーではありません（{}）", known.join("、")),
                    ));
                }
            },
        };
        let caller = if researcher {
            let scopes = ScopeSet::parse("system/*.rs")
                .map_err(|e| InteractionError::bad_request(e.to_string(), e.to_string()))?;
            Caller {
                agent: ctx.caller.agent.clone(),
                access: Access::Scoped { scopes: Arc::new(scopes), patient: None },
            }
        } else {
            (*ctx.caller).clone()
        };
        check_params(params)?;
        let view = self.fhir.store().pinned()?;
        let plans = self.plan(&level, params, &caller, &ctx.base, view.as_ref())?;
        let transaction_time_ms = now_ms().max(view.last_updated_ms());
        let id = uuid::Uuid::new_v4().simple().to_string();
        std::fs::create_dir_all(self.job_dir(&id)).map_err(|e| io_error("create job", e))?;
        let st = JobState {
            id: id.clone(),
            owner: owner_of(&ctx.caller),
            status: Status::Running,
            request: request_url.to_string(),
            transaction_time_ms,
            finished_ms: None,
            outputs: Vec::new(),
            progress: "queued".into(),
            failure: None,
            deid: None,
        };
        self.save(&st)?;
        let job = Arc::new(Job { state: Mutex::new(st), cancelled: AtomicBool::new(false) });
        self.jobs.lock().insert(id.clone(), job.clone());
        let me = self.me.upgrade().ok_or_else(|| io_error("server stopping", std::io::Error::other("stopping")))?;
        let deidentifier = deid.map(|policy| {
            let salt = uuid::Uuid::new_v4();
            let year = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(transaction_time_ms)
                .map_or(1970, |d| chrono::Datelike::year(&d));
            tsunagu_deid::Deidentifier::new(policy, &self.key, salt.as_bytes(), &ctx.base, year)
        });
        let spawned = std::thread::Builder::new().name(format!("export-{id}")).spawn(move || {
            run::run(&me, &job, view, plans, deidentifier);
        });
        spawned.map_err(|e| io_error("start job", e))?;
        Ok(id)
    }

    fn job(&self, id: &str, ctx: &RequestContext) -> Result<Arc<Job>, InteractionError> {
        let valid = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(not_found(id));
        }
        let known = self.jobs.lock().get(id).cloned();
        let job = match known {
            Some(j) => j,
            None => {
                let st = read_state(&self.job_dir(id)).ok_or_else(|| not_found(id))?;
                let j = Arc::new(Job { state: Mutex::new(st), cancelled: AtomicBool::new(false) });
                self.jobs.lock().insert(id.to_string(), j.clone());
                j
            }
        };
        let (owner, expired) = {
            let st = job.state.lock();
            let horizon = now_ms() - (self.config.retention_secs as i64).saturating_mul(1000);
            (st.owner.clone(), st.finished_ms.is_some_and(|f| f <= horizon))
        };
        if expired {
            self.jobs.lock().remove(id);
            let _ = std::fs::remove_dir_all(self.job_dir(id));
            return Err(not_found(id));
        }
        if owner != owner_of(&ctx.caller) {
            return Err(InteractionError::forbidden(
                "only the client that started this export may see, download or cancel it",
                "このエクスポートを参照・取得・取消できるのは開始したクライアントだけです",
            ));
        }
        Ok(job)
    }

    /// The status of job `id`: running, the manifest, or its failure.
    pub fn status(&self, id: &str, ctx: &RequestContext) -> Result<ExportStatus, InteractionError> {
        let job = self.job(id, ctx)?;
        let st = job.state.lock().clone();
        match st.status {
            Status::Running => Ok(ExportStatus::InProgress {
                progress: st.progress.clone(),
                retry_after_secs: self.config.retry_after_secs,
            }),
            Status::Failed => {
                let (en, ja) = st.failure.unwrap_or_default();
                Err(InteractionError::ExportFailed { en, ja })
            }
            Status::Completed => {
                let base = &ctx.base;
                let output: Vec<Value> = st
                    .outputs
                    .iter()
                    .map(|o| json!({"type": o.ty, "url": format!("{base}/$export-file/{}/{}", st.id, o.file), "count": o.count}))
                    .collect();
                let mut manifest = json!({
                    "transactionTime": crate::format_instant(st.transaction_time_ms),
                    "request": st.request,
                    "requiresAccessToken": true,
                    "output": output,
                    "error": [],
                });
                if let Some((policy, k)) = &st.deid {
                    manifest["extension"] = json!({ DEID_EXTENSION: { "policy": policy, "k": k } });
                }
                Ok(ExportStatus::Complete(manifest))
            }
        }
    }

    /// Cancels job `id` (running or finished) and removes its files.
    pub fn cancel(&self, id: &str, ctx: &RequestContext) -> Result<(), InteractionError> {
        let job = self.job(id, ctx)?;
        job.cancelled.store(true, Ordering::SeqCst);
        // A running job's thread may still be writing: hold its state lock so it cannot
        // save after the directory is gone (it checks the flag under the same lock).
        let _st = job.state.lock();
        self.jobs.lock().remove(id);
        std::fs::remove_dir_all(self.job_dir(id)).map_err(|e| io_error("remove job", e))
    }

    /// The path of an output file of a completed job.
    pub fn file(&self, id: &str, file: &str, ctx: &RequestContext) -> Result<PathBuf, InteractionError> {
        let job = self.job(id, ctx)?;
        let st = job.state.lock();
        let listed = st.status == Status::Completed && st.outputs.iter().any(|o| o.file == file);
        if !listed {
            return Err(InteractionError::NotFound("$export-file".into(), format!("{id}/{file}")));
        }
        Ok(self.job_dir(id).join(file))
    }

    /// Every type's queries, confined to what `caller` may search.
    fn plan(
        &self,
        level: &ExportLevel,
        params: &SearchParams,
        caller: &Caller,
        base: &str,
        view: &dyn tsunagu_store::PinnedView,
    ) -> Result<Vec<TypePlan>, InteractionError> {
        let fhir = &self.fhir;
        let compartment = fhir.model.compartment("Patient");
        let in_compartment = |ty: &str| ty == "Patient" || compartment.is_some_and(|c| c.members.contains_key(ty));
        let explicit: Option<Vec<String>> = params
            .pairs
            .iter()
            .filter(|(k, _)| k == "_type")
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>())
            .fold(None, |acc: Option<Vec<String>>, t| {
                let mut a = acc.unwrap_or_default();
                if !a.contains(&t) {
                    a.push(t);
                }
                Some(a)
            });
        let types: Vec<String> = match &explicit {
            Some(list) => {
                for t in list {
                    if fhir.known_type(t).is_err() || t == "AuditEvent" {
                        return Err(InteractionError::bad_request(
                            format!("_type names '{t}', which is not a resource type this server exports"),
                            format!("_type の '{t}' はこのサーバがエクスポートするリソースタイプではありません"),
                        ));
                    }
                    if *level != ExportLevel::System && !in_compartment(t) {
                        return Err(InteractionError::bad_request(
                            format!("{t} is not in the Patient compartment, so a Patient or Group export has none"),
                            format!("{t} は Patient コンパートメントに含まれないため、Patient・Group エクスポートの対象になりません"),
                        ));
                    }
                }
                list.clone()
            }
            None => {
                let mut all: Vec<String> = fhir
                    .model
                    .resource_types()
                    .iter()
                    .map(|t| t.to_string())
                    .filter(|t| t != "AuditEvent")
                    .filter(|t| *level == ExportLevel::System || in_compartment(t))
                    .collect();
                all.sort();
                all
            }
        };
        // `_typeFilter`: per type, each a query whose matches are added (OR).
        let mut filters: HashMap<String, Vec<SearchParams>> = HashMap::new();
        for (_, v) in params.pairs.iter().filter(|(k, _)| k == "_typeFilter") {
            for f in v.split(',').filter(|f| !f.trim().is_empty()) {
                let (t, q) = f.trim().split_once('?').unwrap_or((f.trim(), ""));
                if !types.iter().any(|x| x == t) {
                    return Err(InteractionError::bad_request(
                        format!("_typeFilter '{f}' names a type that is not exported"),
                        format!("_typeFilter '{f}' はエクスポート対象でないタイプを指定しています"),
                    ));
                }
                filters.entry(t.to_string()).or_default().push(SearchParams::parse(q));
            }
        }
        let since = match params.get("_since") {
            None => None,
            Some(s) => Some(
                chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| {
                        InteractionError::bad_request(
                            format!("_since '{s}' is not an instant (a date and time with a time zone)"),
                            format!("_since '{s}' はインスタント（タイムゾーン付きの日時）ではありません"),
                        )
                    })?
                    .timestamp_millis(),
            ),
        };
        // The Group's members, as of the snapshot.
        let members: Option<Vec<String>> = match level {
            ExportLevel::Group(gid) => {
                let v = view
                    .read("Group", gid)?
                    .filter(|v| !v.deleted)
                    .ok_or_else(|| InteractionError::NotFound("Group".into(), gid.clone()))?;
                fhir.check_visible(caller, Permission::Read, &v)?;
                let g: Value = serde_json::from_slice(&v.body).unwrap_or(Value::Null);
                let mut ids: Vec<String> = g["member"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["inactive"] != true)
                    .filter_map(|m| m["entity"]["reference"].as_str())
                    .filter_map(|r| {
                        let rel = r.strip_prefix(base).map(|s| s.trim_start_matches('/')).unwrap_or(r);
                        rel.strip_prefix("Patient/").map(|id| id.split('/').next().unwrap_or(id).to_string())
                    })
                    .collect();
                ids.sort();
                ids.dedup();
                Some(ids)
            }
            _ => None,
        };
        let mut plans = Vec::new();
        for ty in &types {
            match fhir.reach(caller, ty, Permission::Search, None) {
                Ok(_) => {}
                Err(e) if explicit.is_some() => return Err(e),
                Err(_) => continue,
            }
            fhir.reach(caller, ty, Permission::Read, None).or_else(|e| {
                if explicit.is_some() {
                    Err(e)
                } else {
                    Ok(Reach::All)
                }
            })?;
            let alternatives: Vec<SearchParams> =
                filters.get(ty).cloned().unwrap_or_else(|| vec![SearchParams::default()]);
            let level_clauses: Vec<Option<Clause>> = match (&members, level) {
                (Some(ids), _) => {
                    if ids.is_empty() {
                        continue;
                    }
                    ids.chunks(self.config.group_chunk.max(1))
                        .map(|chunk| Some(member_clause(fhir, ty, chunk)))
                        .collect()
                }
                (None, ExportLevel::Patient) if ty != "Patient" => vec![Some(member_clause(fhir, ty, &[]))],
                _ => vec![None],
            };
            let mut queries = Vec::new();
            for alt in &alternatives {
                let parsed = fhir.build_query(Some(ty), alt, true, base)?;
                if !parsed.includes.is_empty() || !parsed.revincludes.is_empty() || !parsed.query.sort.is_empty() {
                    return Err(InteractionError::bad_request(
                        "_typeFilter queries may not use _include, _revinclude or _sort",
                        "_typeFilter の検索条件に _include・_revinclude・_sort は使えません",
                    ));
                }
                let mut q = parsed.query;
                q.resource_type = Some(ty.clone());
                fhir.confine(caller, &mut q, None)?;
                if let Some(ms) = since {
                    q.clauses
                        .push(Clause { any: vec![Condition::LastUpdated { lo: ms.saturating_add(1), hi: i64::MAX }] });
                }
                for lc in &level_clauses {
                    let mut q = q.clone();
                    q.clauses.extend(lc.clone());
                    queries.push(q);
                }
            }
            plans.push(TypePlan { ty: ty.clone(), queries });
        }
        if plans.is_empty() {
            return Err(InteractionError::forbidden(
                "The access token's scopes allow exporting none of these types",
                "アクセストークンのスコープではこれらのタイプをどれもエクスポートできません",
            ));
        }
        Ok(plans)
    }

    fn finish(&self, job: &Job, f: impl FnOnce(&mut JobState)) {
        let mut st = job.state.lock();
        if job.cancelled.load(Ordering::SeqCst) {
            return;
        }
        f(&mut st);
        st.finished_ms = Some(now_ms());
        if let Err(e) = self.save(&st) {
            tracing::error!("bulk export {}: {e}", st.id);
        }
    }
}

/// The extension of a de-identified export's manifest: `{policy, k}`, k the smallest group
/// of exported Patients sharing birth year, gender and postal prefix.
pub const DEID_EXTENSION: &str = "https://tsunagu.jp/fhir/bulk/deidentification";

/// Resources of `ty` in the compartments of `patients` (any patient's when empty); for
/// Patient itself, those patients.
fn member_clause(fhir: &Interactions, ty: &str, patients: &[String]) -> Clause {
    if ty == "Patient" {
        return Clause { any: patients.iter().map(|p| Condition::Id(p.clone())).collect() };
    }
    let params: Vec<(String, String)> = fhir
        .model
        .compartment("Patient")
        .and_then(|c| c.members.get(ty))
        .into_iter()
        .flatten()
        .map(|code| (ty.to_string(), code.to_string()))
        .collect();
    let target = |id: Option<String>| Condition::Compartment {
        params: params.clone(),
        target_type: "Patient".into(),
        target_id: id,
    };
    if patients.is_empty() {
        Clause { any: vec![target(None)] }
    } else {
        Clause { any: patients.iter().map(|p| target(Some(p.clone()))).collect() }
    }
}

/// Parameters other than those this server knows are refused rather than ignored: an
/// export silently wider than asked for could leak.
fn check_params(params: &SearchParams) -> Result<(), InteractionError> {
    for (k, v) in &params.pairs {
        match k.as_str() {
            "_type" | "_since" | "_typeFilter" | "_deidentify" | "_format" | "_pretty" => {}
            "_outputFormat" => {
                if !matches!(v.as_str(), "application/fhir+ndjson" | "application/ndjson" | "ndjson") {
                    return Err(InteractionError::bad_request(
                        format!("_outputFormat '{v}' is not supported (application/fhir+ndjson)"),
                        format!("_outputFormat '{v}' には対応していません（application/fhir+ndjson）"),
                    ));
                }
            }
            _ => {
                return Err(InteractionError::bad_request(
                    format!("the export parameter '{k}' is not supported"),
                    format!("エクスポートのパラメータ '{k}' には対応していません"),
                ))
            }
        }
    }
    Ok(())
}

fn read_state(dir: &Path) -> Option<JobState> {
    let text = std::fs::read_to_string(dir.join(JOB_FILE)).ok()?;
    JobState::from_json(&serde_json::from_str(&text).ok()?)
}

fn remove_outputs(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "ndjson") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The HMAC key of de-identification: 32 random bytes, created once, owner-only.
fn load_or_create_key(path: &Path) -> Result<Vec<u8>, InteractionError> {
    if let Ok(k) = std::fs::read(path) {
        if k.len() >= 32 {
            return Ok(k);
        }
    }
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| io_error("create the de-identification key", e))?;
    std::io::Write::write_all(&mut f, &key).map_err(|e| io_error("write the de-identification key", e))?;
    Ok(key)
}

/// Parameters of a POSTed Parameters body, as query pairs (`valueString`, `valueCode`,
/// `valueInstant`, … of each parameter).
pub fn parameters_to_pairs(body: &Value) -> Result<SearchParams, InteractionError> {
    if body["resourceType"] != "Parameters" {
        return Err(InteractionError::bad_request(
            "a POSTed $export takes a Parameters resource",
            "POST による $export には Parameters リソースが必要です",
        ));
    }
    let mut pairs = Vec::new();
    for p in body["parameter"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or("").to_string();
        let value = p
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.starts_with("value")).map(|(_, v)| v.clone()))
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| {
                InteractionError::bad_request(
                    format!("the export parameter '{name}' has no simple value"),
                    format!("エクスポートのパラメータ '{name}' に単純な値がありません"),
                )
            })?;
        pairs.push((name, value));
    }
    Ok(SearchParams { pairs })
}
