//! `tsunagu bench search --shapes`: the query shapes clients send beyond the sampled mix
//! (multi-key sorts, sorted windows, type-level `$everything` and history, two common
//! tokens, several values of one token, `:missing`, quantity ranges, `_text` with
//! `_sort`, `:text`, several ids, chains), first pages and `_total=accurate`, each run the same way many times. A refusal (422 past the search
//! ceiling) is a result, printed with its status, not an error of the benchmark.

use std::time::{Duration, Instant};
use tsunagu_interaction::{InteractionError, Interactions, RequestContext, SearchParams};
use tsunagu_store::HistoryScope;

/// How a shape is answered.
#[derive(Clone, Copy)]
enum Call {
    Search(&'static str),
    EverythingAll,
    TypeHistory(&'static str),
}

const SHAPES: &[(Call, &str)] = &[
    (Call::Search("Observation"), "_sort=-date,code&_count=5"),
    (Call::Search("Observation"), "_sort=code,-date&_count=5"),
    (Call::Search("Observation"), "_sort=status,date&_count=5"),
    (Call::Search("Observation"), "date=ge2020-01-01&date=lt2020-02-01&_sort=date&_count=5"),
    (Call::EverythingAll, "_count=5"),
    (Call::TypeHistory("Observation"), "_count=50"),
    (Call::Search("Observation"), "category=laboratory&status=final&_count=50"),
    (Call::Search("Observation"), "code:missing=false&_count=50"),
    (Call::Search("Observation"), "_text=glucose&_sort=-date&_count=5"),
    (Call::Search("Observation"), "_content=glucose&_sort=-date&_count=5"),
    (Call::Search("Observation"), "value-quantity=gt150&_count=5"),
    (Call::Search("Observation"), "code=http://loinc.org|8302-2&value-quantity=gt180"),
    (Call::Search("Encounter"), "date=ge2015-01-01&_sort=-date&_count=10"),
    (Call::Search("Patient"), "birthdate=lt1950-01-01&gender=female&_count=20"),
    (Call::Search("MedicationRequest"), "status=active&_include=MedicationRequest:patient&_count=20"),
    (Call::Search("Condition"), "clinical-status=active&_sort=-onset-date&_count=10"),
    (Call::Search("Observation"), "_sort=-_lastUpdated&_count=10"),
    (Call::Search("Observation"), "_sort=status&_count=10"),
    (Call::Search("Observation"), "_sort=status,-_lastUpdated&_count=10"),
    (Call::Search("Encounter"), "_sort=class,-date&_count=10"),
    (Call::Search("Observation"), "category=laboratory&status=final&_sort=-date&_count=10"),
    (Call::Search("Observation"), "category=vital-signs&_sort=-date&_count=10"),
    (Call::Search("Observation"), "date=gt2021-06-01&_count=10"),
    (Call::Search("Observation"), "subject:Patient.gender=female&_count=10"),
    (Call::Search("Observation"), "_sort=value-quantity&_count=10"),
    (Call::Search("Observation"), "_sort=status,-value-quantity&_count=5"),
    (Call::Search("Observation"), "category=laboratory&_sort=value-quantity&_count=10"),
    (Call::Search("Observation"), "code=http://loinc.org|2339-0&_sort=value-quantity&_count=10"),
    (Call::Search("Observation"), "code=http://loinc.org|8302-2&_sort=value-quantity&_count=10"),
    (Call::Search("Observation"), "code=8302-2&_sort=-value-quantity,-date&_count=10"),
    (Call::Search("Observation"), "code=2339-0&value-quantity=gt150&_sort=-date&_count=10"),
    (
        Call::Search("Observation"),
        "code=8302-2&value-quantity=ge100&value-quantity=le120&_sort=-value-quantity&_count=10",
    ),
    (
        Call::Search("Observation"),
        "code=http://loinc.org|8302-2&value-quantity=lt60&_sort=value-quantity&_total=accurate&_count=10",
    ),
    (Call::Search("Observation"), "category=vital-signs&_sort=-value-quantity&_count=10"),
    (Call::Search("Observation"), "_sort=subject&_count=10"),
    (Call::Search("Observation"), "status:not=final&_sort=-date&_count=10"),
    (Call::Search("Observation"), "category:not=laboratory&_count=10"),
    (Call::Search("Observation"), "value-quantity=gt150&_sort=value-quantity&_count=10"),
    (Call::Search("Observation"), "value-quantity=ge100&value-quantity=le120&_sort=-value-quantity&_count=10"),
    (Call::Search("Observation"), "status=amended,corrected,preliminary&_count=10"),
    (Call::Search("Observation"), "status=final,amended&_count=10"),
    (Call::Search("Observation"), "status=final,amended&_sort=-date&_count=10"),
    (Call::Search("Observation"), "_sort=status,status,status,status,status,status,status,status&_count=5"),
    (Call::Search("Observation"), "status=amended,corrected,preliminary,registered&_total=accurate&_count=1"),
    (Call::Search("Observation"), "category=laboratory&status=final&_total=accurate&_count=1"),
    (Call::Search("Observation"), "value-quantity=gt150&_total=accurate&_count=1"),
    (Call::Search("Observation"), "date=ge2020-01-01&date=lt2020-02-01&_total=accurate&_count=1"),
    (Call::Search("Observation"), "code=http://loinc.org|8302-2&value-quantity=gt180&_total=accurate"),
    (Call::Search("Observation"), "code=http://loinc.org|8302-2&status=final&_total=accurate&_count=1"),
    (Call::Search("Patient"), "birthdate=lt1950-01-01&gender=female&_total=accurate&_count=1"),
    (Call::Search("Observation"), "code:text=glucose&_count=10"),
    (Call::Search("Observation"), "code:text=glucose&_sort=-date&_count=10"),
    (Call::Search("Observation"), "code:text=glucose&_total=accurate&_count=1"),
    (Call::Search("Observation"), "_id=o-none-1,o-none-2&_count=10"),
    (Call::Search("Encounter"), "_sort=status,length&_count=5"),
    (Call::Search("Observation"), "date=2015&_sort=value-quantity&_count=10"),
    (Call::Search("Observation"), "encounter.class=EMER&_count=10"),
    (
        Call::Search("Observation"),
        "patient.gender=female&patient.birthdate=lt1960&code=8302-2&_sort=-value-quantity&_count=10",
    ),
    (Call::Search("Observation"), "code:missing=true&_total=accurate"),
    (Call::Search("Observation"), "code:missing=false&_total=accurate&_count=1"),
];

fn answer(
    fhir: &Interactions,
    ctx: &RequestContext,
    call: Call,
    q: &str,
) -> Result<serde_json::Value, InteractionError> {
    let params = SearchParams::parse(q);
    match call {
        Call::Search(ty) => fhir.search(Some(ty), &params, ctx),
        Call::EverythingAll => fhir.everything_all(&params, ctx),
        Call::TypeHistory(ty) => fhir.history(HistoryScope::Type(ty.to_string()), &params, ctx),
    }
}

fn label(call: Call, q: &str) -> String {
    match call {
        Call::Search(ty) => format!("{ty}?{q}"),
        Call::EverythingAll => format!("Patient/$everything?{q}"),
        Call::TypeHistory(ty) => format!("{ty}/_history?{q}"),
    }
}

pub fn run(fhir: &Interactions, runs: usize) {
    let ctx = RequestContext::new("http://localhost:8080");
    println!("\n{:<82} {:>10} {:>10} {:>9} {:>9}", "shape (first page)", "p50", "p95", "entries", "total");
    for &(call, q) in SHAPES {
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        let mut outcome = String::new();
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let result = answer(fhir, &ctx, call, q);
            times.push(started.elapsed());
            outcome = match result {
                Ok(b) => format!(
                    "{:>9} {:>9}",
                    b["entry"].as_array().map_or(0, Vec::len),
                    b["total"].as_u64().map_or("-".to_string(), |t| t.to_string())
                ),
                Err(e) => format!("{:>9} {}", e.status(), e.issue_code()),
            };
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1).min(times.len() - 1)];
        println!("{:<82} {:>10.2?} {:>10.2?} {outcome}", label(call, q), pct(0.50), pct(0.95));
    }
}
