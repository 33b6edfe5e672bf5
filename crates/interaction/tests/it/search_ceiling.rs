//! The cost ceiling of a search page: `max_search_steps` on SQLite, `max_search_ms` on
//! PostgreSQL (`TSUNAGU_TEST_BACKEND=postgres`). With a small ceiling a broad search in
//! write order answers partial pages whose `next` links, followed to the end, give exactly
//! what the same search gives without a ceiling; a sorted search or a total that cannot be
//! answered within it is refused with 422 naming the limit. Both stores hold the same data,
//! so the expected answers come from the one without a ceiling.

use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tsunagu_interaction::{
    InteractionConfig, InteractionError, Interactions, Lang, NoCheck, RequestContext, SearchParams,
};
use tsunagu_store::Store;
use tsunagu_store_postgres::test_backend::postgres_requested;

const LOINC: &str = "http://loinc.org";

/// The ceiling of each backend, and the data it is tested on.
struct Setup {
    /// The limit's key in `[limits]`.
    key: &'static str,
    /// Small enough that collecting, counting or sorting the rows of a broad condition
    /// does not fit, large enough for a walk to look at some resources.
    ceiling: usize,
}

/// Patients, each with 100 Observations. PostgreSQL answers broad pages in write order
/// within a millisecond at any size (an index walk stopping at the page), so its data is
/// larger: what cannot stop early (sorting, counting, looking at every Observation for a
/// missing code) then takes tens of milliseconds.
fn patients() -> usize {
    if postgres_requested() {
        400
    } else {
        40
    }
}

fn setup() -> Setup {
    if postgres_requested() {
        Setup { key: "max_search_ms", ceiling: postgres().1 }
    } else {
        // SQLite virtual-machine steps.
        Setup { key: "max_search_steps", ceiling: 5_000 }
    }
}

/// The PostgreSQL store every test of this binary searches (loaded once: the ceiling is
/// the search's own, not the store's), and its ceiling: a time ceiling cannot be set
/// without knowing the machine, so it is a third of the time the general SQL takes here
/// to look at every Observation for a missing code (about 30 ms on 2 cores), which sorting
/// or counting 32,000 matches exceeds too, and a walk's first batch (64 resources) does
/// not come near.
fn postgres() -> &'static (Arc<dyn Store>, usize) {
    static STORE: OnceLock<(Arc<dyn Store>, usize)> = OnceLock::new();
    STORE.get_or_init(|| {
        let pg = tsunagu_store_postgres::throwaway::test_store().expect("PostgreSQL is installed");
        let fhir = Interactions::new(pg.clone(), Arc::new(NoCheck), InteractionConfig::default());
        fill(&fhir);
        // The planner's statistics, as autovacuum would have them on a server.
        pg.analyze().unwrap();
        let (params, ctx) = (SearchParams::parse("code:missing=true"), RequestContext::new("http://x"));
        let mut unbounded = InteractionConfig::default();
        unbounded.limits.max_search_ms = 0;
        let fhir = Interactions::new(pg.clone(), Arc::new(NoCheck), unbounded);
        let fastest = (0..3)
            .map(|_| {
                let started = Instant::now();
                fhir.search(Some("Observation"), &params, &ctx).unwrap();
                started.elapsed()
            })
            .min()
            .unwrap();
        (pg, (fastest.as_millis() as usize / 3).max(2))
    })
}

/// A store holding `patients()` patients with 100 Observations each (codes `common`, every
/// third `other`), three `rare` ones, searched with a ceiling of `ceiling` per page (none,
/// and on SQLite no walks, when 0: the reference).
fn loaded(ceiling: usize) -> (Option<tempfile::TempDir>, Interactions) {
    let mut config = InteractionConfig::default();
    if postgres_requested() {
        config.limits.max_search_ms = ceiling;
        return (None, Interactions::new(postgres().0.clone(), Arc::new(NoCheck), config));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = tsunagu_store::SqliteStore::open(dir.path(), tsunagu_store::SyncMode::Normal).unwrap();
    if ceiling == 0 {
        // The reference: the general plans alone, no walk of any kind.
        store.set_sort_walk(None);
    }
    config.limits.max_search_steps = ceiling;
    let fhir = Interactions::new(Arc::new(store), Arc::new(NoCheck), config);
    fill(&fhir);
    (Some(dir), fhir)
}

fn fill(fhir: &Interactions) {
    let mut staged = Vec::new();
    for p in 0..patients() {
        staged.extend(fhir.stage(json!({"resourceType": "Patient", "id": format!("p{p}")})).unwrap());
        for k in 0..100 {
            let code = if k % 3 == 0 { "other" } else { "common" };
            staged.extend(fhir.stage(observation(&format!("o{p}-{k}"), p, code, k)).unwrap());
        }
    }
    for p in [0, 7, 21] {
        staged.extend(fhir.stage(observation(&format!("rare{p}"), p, "rare", 50)).unwrap());
    }
    fhir.load(staged).unwrap();
}

fn observation(id: &str, patient: usize, code: &str, k: usize) -> Value {
    let status = if k.is_multiple_of(5) { "preliminary" } else { "final" };
    json!({"resourceType": "Observation", "id": id, "status": status,
           "code": {"coding": [{"system": LOINC, "code": code}]},
           "subject": {"reference": format!("Patient/p{patient}")},
           "valueQuantity": {"value": k, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
           "effectiveDateTime": format!("2024-{:02}-{:02}", 1 + k % 12, 1 + k % 28)})
}

/// Every match following `next` links (ids in page order), and how many pages said they
/// stopped early at the ceiling.
fn all_pages(fhir: &Interactions, ty: &str, query: &str) -> (Vec<String>, usize) {
    let (mut out, mut cut) = (Vec::new(), 0);
    let mut params = SearchParams::parse(query);
    for _ in 0..100_000 {
        let b = page(fhir, ty, &params, query);
        for e in b["entry"].as_array().into_iter().flatten() {
            match e["search"]["mode"].as_str() {
                Some("match") => out.push(e["resource"]["id"].as_str().unwrap().to_string()),
                Some("outcome") if e["resource"].to_string().contains(setup().key) => cut += 1,
                _ => {}
            }
        }
        let next = b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next");
        match next {
            Some(l) => params = SearchParams::parse(l["url"].as_str().unwrap().split_once('?').unwrap().1),
            None => return (out, cut),
        }
    }
    panic!("{query}: the pages never end");
}

/// One page. On PostgreSQL the ceiling is time, so on a loaded machine even a walk's first
/// batch can miss it and the page is refused as too costly to start; a client would try
/// again, and so does the test (a few times, waiting longer each time). The answers it
/// compares stay exact: a retried page must still continue where the last one stopped.
fn page(fhir: &Interactions, ty: &str, params: &SearchParams, query: &str) -> Value {
    let ctx = RequestContext::new("http://x");
    for attempt in 0..6 {
        match fhir.search(Some(ty), params, &ctx) {
            Ok(b) => return b,
            Err(e) if postgres_requested() && e.status() == 422 && attempt < 5 => {
                eprintln!("{query}: {e}; trying again");
                std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
            }
            Err(e) => panic!("{query}: {e}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

#[test]
fn partial_pages_in_write_order_add_up_to_the_whole_result() {
    let (_a, unlimited) = loaded(0);
    let (_b, ceiled) = loaded(setup().ceiling);
    let queries = [
        "status=final&_count=50".to_string(),
        "code:missing=false&_count=200".to_string(),
        "value-quantity=gt60&_count=50".to_string(),
        "date=ge2024-06-01&status:not=preliminary&_count=30".to_string(),
        format!("code={LOINC}|other&status=final&_count=40"),
        format!("code={LOINC}|rare&_count=2"),
        "subject:Patient._id=p3,p9&_count=20".to_string(),
        "code:missing=true".to_string(),
    ];
    let mut cut_somewhere = 0;
    for q in &queries {
        let (want, wcut) = all_pages(&unlimited, "Observation", q);
        assert_eq!(wcut, 0, "{q}: no ceiling, no cut pages");
        let (got, cut) = all_pages(&ceiled, "Observation", q);
        assert_eq!(got.len(), want.len(), "{q}: as many matches with the ceiling as without");
        assert_eq!(got, want, "{q}: the same matches in the same order, none lost or repeated");
        cut_somewhere += cut;
    }
    assert!(cut_somewhere > 0, "the ceiling cut some pages short");
    if postgres_requested() {
        // No Observation lacks a code: looking at all 40,003 does not fit the ceiling.
        let (got, cut) = all_pages(&ceiled, "Observation", "code:missing=true&_count=200");
        assert!(cut > 0 && got.is_empty(), "{cut} pages cut");
    } else {
        // Every Observation has a value of at least 0: collecting the 4,003 rows (a quantity
        // range with no unit reads every value) does not fit the ceiling. (`code:missing=false`
        // no longer costs anything: the store's counts say every Observation has a code.)
        let (got, cut) = all_pages(&ceiled, "Observation", "value-quantity=ge0&_count=200");
        assert!(cut > 0 && got.len() == 4003, "{cut} pages cut");
    }
}

#[test]
fn sorted_and_counted_searches_past_the_ceiling_are_refused_naming_the_limit() {
    let Setup { key, ceiling, .. } = setup();
    let (_b, ceiled) = loaded(ceiling);
    let ctx = RequestContext::new("http://x");
    // Sorted: no plan orders 40,000 matches within the ceiling, on SQLite by a quantity,
    // on PostgreSQL by a reference and then a date, which has no walk there (a reference
    // walks its index only as the one sort key; a date or quantity sort walks its index,
    // testing each row's status).
    // Counted: every value of a quantity with no unit given read (SQLite answers a missing
    // code from its kept counts at once).
    let (sorted, counted) = if postgres_requested() {
        ("status=final&_sort=subject,-date", "code:missing=true&_total=accurate")
    } else {
        ("status=final&_sort=-value-quantity", "value-quantity=ge0&_total=accurate")
    };
    for (query, at) in [(sorted, "_sort"), (counted, "_total")] {
        let err = ceiled.search(Some("Observation"), &SearchParams::parse(query), &ctx).unwrap_err();
        assert!(matches!(err, InteractionError::Limit(_)), "{query}: {err:?}");
        assert_eq!(err.status(), 422, "{query}");
        assert_eq!(err.issue_code(), "too-costly");
        let en = err.message(Lang::En);
        assert!(en.contains(&format!("{key} = {ceiling}")) && en.contains(at), "{en}");
        assert!(en.contains("more selective"), "{en}");
        let ja = err.message(Lang::Ja);
        assert!(ja.contains(&format!("{key} = {ceiling}")) && ja.contains("絞り込"), "{ja}");
    }
    // Within the ceiling both are answered as ever.
    let b = ceiled
        .search(
            Some("Observation"),
            &SearchParams::parse(&format!("code={LOINC}|rare&_sort=-date&_total=accurate")),
            &ctx,
        )
        .unwrap();
    assert_eq!(b["total"], 3);
}

/// Conditional criteria run while the transaction holds the write lock: past the ceiling
/// they are refused (422), where PostgreSQL planned a thousand parameters for minutes with
/// every writer waiting. Nothing is written, and the next transaction that needs the lock
/// gets it.
#[test]
fn costly_conditional_criteria_are_refused_and_leave_the_lock_free() {
    let Setup { ceiling, .. } = setup();
    let (_b, ceiled) = loaded(ceiling);
    let ctx = RequestContext::new("http://x");
    let referring = |criteria: String| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": {"resourceType": "Patient", "managingOrganization": {"reference": format!("Organization?{criteria}")}},
            "request": {"method": "POST", "url": "Patient"}}]})
    };
    let patients = || {
        let b = ceiled.search(Some("Patient"), &SearchParams::parse("_summary=count"), &ctx).unwrap();
        b["total"].as_u64().unwrap()
    };
    let before = patients();
    let thousand: Vec<String> = (0..1000).map(|i| format!("name=a{i}")).collect();
    let err = ceiled.bundle(referring(thousand.join("&")), &ctx).unwrap_err();
    assert_eq!((err.status(), err.issue_code()), (422, "too-costly"), "{err:?}");
    let err = ceiled.bundle(referring("name=nothing".into()), &ctx).unwrap_err();
    assert_eq!(err.status(), 412, "{err:?}");
    assert_eq!(patients(), before);
}

/// With the smallest ceiling nearly every page is answered by the write-order walk, which
/// tests each condition on the resource's index record: it must agree with the index
/// tables' own SQL for every kind of condition it decides. SQLite only: a time ceiling
/// cannot choose which pages it cuts, so PostgreSQL's walk is compared with its general SQL
/// by stopping it after each batch (`tsunagu-store-postgres`, `ceiling::tests`).
#[test]
fn record_probes_agree_with_the_index_tables() {
    if postgres_requested() {
        return;
    }
    let (_a, unlimited) = loaded(0);
    let (_b, tiny) = loaded(1_000);
    let queries = [
        "value-quantity=lt20|http://unitsofmeasure.org|mg/dL",
        "value-quantity=ge50&value-quantity=le60",
        "value-quantity=ap40",
        "date=2024-03",
        "date=ne2024-03-04",
        "date=sa2024-06-01",
        "date=eb2024-02-01",
        "date=ap2024-05-05",
        "date=ge2024-03-01&date=lt2024-04-01",
        "status:not=final",
        "subject:missing=true",
        "subject:missing=false&status=preliminary",
        "_id=o1-1,o2-2,rare7",
        "code=http://loinc.org|rare,|common&status=preliminary",
        "code=other",
        "subject=Patient/p3&status=final",
        "subject=p5,Patient/p6",
    ];
    let mut cut = 0;
    for q in queries {
        let q = format!("{q}&_count=25");
        let (want, _) = all_pages(&unlimited, "Observation", &q);
        let (got, c) = all_pages(&tiny, "Observation", &q);
        assert_eq!(got, want, "{q}");
        cut += c;
    }
    assert!(cut > 100, "{cut} pages cut");
}
