//! `start` and `end` of `Patient/$everything`: care dates. R4 says they relate "to care
//! dates, not record currency dates" and defines no more. Read here as the `clinical-date`
//! search parameter (`date` on Encounter, Observation, Procedure, DiagnosticReport,
//! Immunization, AllergyIntolerance and the other types it is defined on), as Blaze does:
//! a resource of those types is kept when its date overlaps the period from the beginning
//! of `start` to the end of `end` (either may be absent); one without a date is left out; a type without a care date (Condition, MedicationRequest, Claim…) is not
//! narrowed. Never a condition in memory: clauses the store pages like any other.

use crate::error::InteractionError;
use crate::search::SearchParams;
use tsunagu_search::SearchRegistry;
use tsunagu_store::{Clause, Condition, RangeOp, Test};

/// The `clinical-date` search parameter of R4: what "care date" means here.
const CLINICAL_DATE: &str = "http://hl7.org/fhir/SearchParameter/clinical-date";

/// The operation's own parameters this module reads (not search parameters).
pub(crate) const PARAMS: &[&str] = &["start", "end"];

/// The clauses `start` and `end` of `params` add to a search over `candidates` (the
/// compartment's types), and the types they narrow; no clauses without either.
pub(crate) fn clauses(
    registry: &SearchRegistry,
    candidates: &[String],
    params: &SearchParams,
) -> Result<(Vec<Clause>, Vec<String>), InteractionError> {
    let bounds: Vec<(&str, &str)> = params
        .pairs
        .iter()
        .filter(|(k, _)| PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if bounds.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // The OperationDefinition allows each once (0..1); repeats would only add clauses.
    for name in PARAMS {
        if bounds.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(InteractionError::bad_request(
                format!("{name} may be given once"),
                format!("{name} は一度だけ指定できます"),
            ));
        }
    }
    let (dated, undated): (Vec<&String>, Vec<&String>) =
        candidates.iter().partition(|t| registry.params(t).iter().any(|p| p.code == "date" && p.url == CLINICAL_DATE));
    let mut clauses = Vec::new();
    for (name, value) in bounds {
        let Some((lo, hi)) = tsunagu_search::parse_range(value) else {
            return Err(InteractionError::bad_request(
                format!("{name} must be a date (YYYY, YYYY-MM or YYYY-MM-DD), not '{value}'"),
                format!("{name} は日付（YYYY、YYYY-MM または YYYY-MM-DD）でなければなりません（'{value}'）"),
            ));
        };
        // Care that reaches into the period: a date ending after `start` begins, or
        // beginning before `end` ends (`gt`/`lt` against that instant). Not `ge`/`le`,
        // which leave out a stay that began before `start` and goes on past it.
        let test = match name {
            "start" => Test::Date { op: RangeOp::Gt, lo, hi: lo },
            _ => Test::Date { op: RangeOp::Lt, lo: hi, hi },
        };
        let mut any = vec![Condition::Index { param: "date".into(), test, negate: false }];
        any.extend(undated.iter().map(|t| Condition::ResourceType(t.to_string())));
        clauses.push(Clause { any });
    }
    Ok((clauses, dated.into_iter().cloned().collect()))
}
