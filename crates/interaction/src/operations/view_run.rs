//! `ViewDefinition/$run` (SQL on FHIR v2): a ViewDefinition given inline (`viewResource`,
//! or the body itself) evaluated over the resources the caller may search — or over
//! inline `resource` parameters — answered as a Binary in `_format` (json, ndjson, csv,
//! parquet). `patient`, `_since` and `_limit` narrow it; at most `max_view_rows` rows,
//! `max_view_bytes` of output and `max_view_ms` of time (checked before every expression
//! is evaluated; each evaluation is bounded by `max_fhirpath_steps`).
//!
//! ViewDefinition is not an R4 resource type, so views are not stored: `viewReference`
//! is refused with a message saying so.

use base64::Engine;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use tsunagu_limits::{Limit, LimitExceeded};
use tsunagu_store::{Clause, Condition, SearchQuery};
use tsunagu_view::{CsvSink, Format, JsonSink, NdjsonSink, ParquetOptions, ParquetSink, RowSink, View};

use super::{Invocation, Level, Operation, Output, Parameter};
use crate::access::Reach;
use crate::error::InteractionError;
use crate::{Interactions, Permission, RequestContext};

pub(super) const VIEW_RUN: Operation = Operation {
    name: "run",
    definition: "http://sql-on-fhir.org/OperationDefinition/$run",
    types: &["ViewDefinition"],
    levels: &[Level::Type],
    get: false,
    parameters: &[
        Parameter { name: "viewResource", type_name: "ViewDefinition" },
        Parameter { name: "_format", type_name: "code" },
        Parameter { name: "patient", type_name: "Reference" },
        Parameter { name: "resource", type_name: "Resource" },
        Parameter { name: "_since", type_name: "instant" },
        Parameter { name: "_limit", type_name: "integer" },
    ],
    output: Output::Binary,
    run: |fhir, _, inv, ctx| fhir.view_run(inv, ctx),
};

const NARROW_EN: &str = "Narrow the run with patient, _since or _limit, simplify the view's expressions, \
     or export the whole store with `tsunagu view export`";
const NARROW_JA: &str = "patient・_since・_limit で範囲を絞るか、ビューの式を簡単にするか、\
     ストア全体は `tsunagu view export` で出力してください";

/// The output buffer of one run, refusing to grow past `max_view_bytes` (and saying so in
/// `over`, since the sinks report a write error only as their own).
struct Capped<'b> {
    out: &'b mut Vec<u8>,
    max: usize,
    over: &'b AtomicBool,
    /// Room in `max_memory_bytes`, taken a step ahead of the output: the output is held
    /// again as base64 in the answer, and once more as it is sent.
    memory: Option<&'b crate::MemoryHold>,
    reserved: u64,
    no_room: &'b std::sync::Mutex<Option<InteractionError>>,
}

/// Bytes of `max_memory_bytes` taken at a time as a `$run` output grows.
const OUTPUT_ROOM_STEP: u64 = 4 << 20;

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let len = self.out.len().saturating_add(buf.len());
        if len > self.max {
            self.over.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("the output is past max_view_bytes"));
        }
        let need = (len as u64).saturating_mul(3);
        if let Some(m) = self.memory.filter(|_| need > self.reserved) {
            let step = (need - self.reserved).max(OUTPUT_ROOM_STEP);
            if let Err(e) = m.reserve(step) {
                *self.no_room.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                return Err(std::io::Error::other("no room in max_memory_bytes"));
            }
            self.reserved += step;
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The inputs of one call, from the query and the Parameters body.
#[derive(Default)]
struct RunInput {
    view: Option<Value>,
    format: Option<String>,
    patient: Option<String>,
    resources: Vec<Value>,
    since: Option<String>,
    limit: Option<String>,
}

fn bad(en: impl Into<String>, ja: impl Into<String>) -> InteractionError {
    InteractionError::bad_request(en, ja)
}

fn read_input(inv: &Invocation<'_>) -> Result<RunInput, InteractionError> {
    let mut input = RunInput {
        format: inv.params.get("_format").map(str::to_string),
        patient: inv.params.get("patient").map(str::to_string),
        since: inv.params.get("_since").map(str::to_string),
        limit: inv.params.get("_limit").map(str::to_string),
        ..Default::default()
    };
    let Some(body) = &inv.body else { return Ok(input) };
    match body.get("resourceType").and_then(Value::as_str) {
        Some("ViewDefinition") => input.view = Some(body.clone()),
        Some("Parameters") => {
            for p in body.get("parameter").and_then(Value::as_array).into_iter().flatten() {
                let text = |keys: &[&str]| {
                    keys.iter().find_map(|k| p.get(*k)).map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                };
                match p.get("name").and_then(Value::as_str) {
                    Some("viewResource") => input.view = p.get("resource").cloned(),
                    Some("viewReference") => {
                        return Err(InteractionError::not_supported(
                            "ViewDefinitions are not stored here (not an R4 resource type): send the view as viewResource",
                            "ViewDefinition はサーバに保存されません（R4 のリソース型ではありません）。viewResource で送ってください",
                        ))
                    }
                    Some("_format") => input.format = text(&["valueCode", "valueString"]),
                    Some("patient") => {
                        input.patient = p.pointer("/valueReference/reference").and_then(Value::as_str).map(str::to_string)
                    }
                    Some("resource") => input.resources.extend(p.get("resource").cloned()),
                    Some("_since") => input.since = text(&["valueInstant", "valueDateTime"]),
                    Some("_limit") => input.limit = text(&["valueInteger", "valuePositiveInt"]),
                    _ => {}
                }
            }
        }
        _ => {
            return Err(bad(
                "ViewDefinition/$run takes a Parameters resource (viewResource, _format, …) or a ViewDefinition",
                "ViewDefinition/$run には Parameters（viewResource、_format など）か ViewDefinition を送ってください",
            ))
        }
    }
    Ok(input)
}

fn output_format(name: Option<&str>) -> Result<(Format, &'static str), InteractionError> {
    let name = name.unwrap_or("json");
    let format = match name {
        "json" | "application/json" => Format::Json,
        "ndjson" | "application/ndjson" | "application/x-ndjson" => Format::Ndjson,
        "csv" | "text/csv" => Format::Csv,
        "parquet" | "application/vnd.apache.parquet" => Format::Parquet,
        other => {
            return Err(InteractionError::not_acceptable(
                format!("_format '{other}' is not an output of $run (json, ndjson, csv, parquet)"),
                format!("_format '{other}' は $run の出力形式ではありません（json、ndjson、csv、parquet）"),
            ))
        }
    };
    let content_type = match format {
        Format::Json => "application/json",
        Format::Ndjson => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Parquet => "application/vnd.apache.parquet",
    };
    Ok((format, content_type))
}

impl Interactions {
    fn view_run(&self, inv: &Invocation<'_>, ctx: &RequestContext) -> Result<Value, InteractionError> {
        let input = read_input(inv)?;
        let (format, content_type) = output_format(input.format.as_deref())?;
        let Some(definition) = &input.view else {
            return Err(bad("$run needs a viewResource", "$run には viewResource が必要です"));
        };
        let max = self.config.limits.max_view_rows;
        let view = tsunagu_view::ViewDefinition::from_json(definition)
            .map_err(|e| bad(e.to_string(), e.message_ja()))?
            .with_max_rows_per_resource(max);
        let limit = match &input.limit {
            None => None,
            Some(l) => Some(l.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                bad(format!("_limit '{l}' is not a positive integer"), format!("_limit '{l}' は正の整数ではありません"))
            })?),
        };
        let limits = &self.config.limits;
        let started = std::time::Instant::now();
        let past = |limit: Limit| LimitExceeded::new(limit, limit.value(limits)).hint(NARROW_EN, NARROW_JA);
        let over = AtomicBool::new(false);
        let no_room = std::sync::Mutex::new(None);
        let mut out = Vec::new();
        let capped = Capped {
            out: &mut out,
            max: limits.max_view_bytes,
            over: &over,
            memory: ctx.memory.as_deref(),
            reserved: 0,
            no_room: &no_room,
        };
        let room_error = || no_room.lock().unwrap_or_else(|p| p.into_inner()).take();
        let sink_error = |e: tsunagu_view::ViewError| -> InteractionError {
            if let Some(e) = room_error() {
                return e;
            }
            match over.load(Ordering::Relaxed) {
                true => past(Limit::ViewBytes).into(),
                false => bad(e.to_string(), e.message_ja()),
            }
        };
        let mut sink: Box<dyn RowSink + '_> = match format {
            Format::Json => Box::new(JsonSink::new(capped, view.columns())),
            Format::Ndjson => Box::new(NdjsonSink::new(capped, view.columns())),
            Format::Csv => Box::new(CsvSink::new(capped, view.columns())),
            Format::Parquet => {
                Box::new(ParquetSink::new(capped, view.columns(), ParquetOptions::default()).map_err(sink_error)?)
            }
        };
        let mut rows = 0usize;
        let mut push = |resource: &Value| -> Result<bool, InteractionError> {
            if limits.max_view_ms > 0 && started.elapsed().as_millis() > limits.max_view_ms as u128 {
                return Err(past(Limit::ViewMs).into());
            }
            let mut full = false;
            view.for_each_row(resource, |row| {
                if limit.is_some_and(|l| rows >= l) {
                    full = true;
                    return Ok(());
                }
                rows += 1;
                sink.push(&row)
            })
            .map_err(|e| {
                let id = resource.get("id").and_then(Value::as_str).unwrap_or("?");
                if matches!(e, tsunagu_view::ViewError::TooManyRows { .. }) {
                    return LimitExceeded::new(Limit::ViewRows, max).into();
                }
                if let Some(e) = room_error() {
                    return e;
                }
                if over.load(Ordering::Relaxed) {
                    return past(Limit::ViewBytes).into();
                }
                if matches!(e, tsunagu_view::ViewError::TimeUp) {
                    return past(Limit::ViewMs).into();
                }
                if let Some(l) = e.limit_exceeded() {
                    let at = format!("{}/{id}", view.resource_type());
                    return l.clone().at(at).hint(NARROW_EN, NARROW_JA).into();
                }
                bad(
                    format!("{}/{id}: {e}", view.resource_type()),
                    format!("{}/{id}: {}", view.resource_type(), e.message_ja()),
                )
            })?;
            if rows > max {
                return Err(LimitExceeded::new(Limit::ViewRows, max).into());
            }
            Ok(full || limit.is_some_and(|l| rows >= l))
        };
        let deadline =
            (limits.max_view_ms > 0).then(|| started + std::time::Duration::from_millis(limits.max_view_ms as u64));
        tsunagu_view::with_deadline(deadline, || {
            if input.resources.is_empty() {
                return self.view_source(&view, &input, ctx, &mut push);
            }
            for r in &input.resources {
                if push(r)? {
                    break;
                }
            }
            Ok(())
        })?;
        sink.finish().map_err(sink_error)?;
        drop(sink);
        Ok(json!({
            "resourceType": "Binary",
            "contentType": content_type,
            "data": base64::engine::general_purpose::STANDARD.encode(&out),
        }))
    }

    /// Feeds `push` the stored resources of the view's type that the caller may search,
    /// page by page in write order, until it says the output is full.
    fn view_source(
        &self,
        view: &View,
        input: &RunInput,
        ctx: &RequestContext,
        push: &mut dyn FnMut(&Value) -> Result<bool, InteractionError>,
    ) -> Result<(), InteractionError> {
        let ty = view.resource_type();
        self.known_type(ty)?;
        let mut clauses = match self.reach(&ctx.caller, ty, Permission::Search, None)? {
            Reach::All => Vec::new(),
            Reach::Where(c) => c,
        };
        if let Some(p) = &input.patient {
            let id = p.strip_prefix("Patient/").unwrap_or(p);
            let Some(c) = self.patient_clause(ty, id, &[]) else {
                return Err(bad(
                    format!("{ty} is not in the Patient compartment, so patient cannot narrow it"),
                    format!("{ty} は Patient コンパートメントに属さないため patient で絞り込めません"),
                ));
            };
            clauses.push(c);
        }
        if let Some(s) = &input.since {
            let lo = crate::instant::parse_range(s).map(|(lo, _)| lo).ok_or_else(|| {
                bad(format!("_since '{s}' is not an instant"), format!("_since '{s}' は日時として不正です"))
            })?;
            clauses.push(Clause { any: vec![Condition::LastUpdated { lo, hi: i64::MAX }] });
        }
        let q = SearchQuery { resource_type: Some(ty.to_string()), clauses, count: 500, ..Default::default() };
        tsunagu_store::scan(self.store.as_ref(), q, |v| {
            let Ok(resource) = serde_json::from_slice::<Value>(&v.body) else { return Ok(true) };
            push(&resource).map(|full| !full)
        })
    }
}
