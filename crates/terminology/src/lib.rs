//! The FHIR R4 terminology service of Tsunagu: CodeSystem `$lookup`, `$validate-code` and
//! `$subsumes`; ValueSet `$expand` and `$validate-code`; ConceptMap `$translate`; and the
//! questions the validator and search ask (value-set [`Membership`], descendants and
//! ancestors for token `:below`/`:above`, value-set codes for `:in`/`:not-in`).
//!
//! It owns: indexing code systems (hierarchy, designations, properties) from packages and
//! from resources added at runtime, evaluating value-set `compose` (concept lists, whole
//! systems, filters, imports, excludes), expansion caching, concept-map indexing, and
//! reading the Japanese standard masters (MEDIS 病名, JLAC10, HOT, YJ) from Shift_JIS or
//! UTF-8 files into CodeSystems ([`load_master`]). Every text filter goes through
//! `tsunagu_text::normalize`, so ﾔﾏﾀﾞ, ヤマダ and やまだ meet.
//!
//! It never does HTTP, storage, network fetches of code systems, or OperationOutcome
//! building: operations take plain Rust arguments and return FHIR JSON (`Parameters`, or a
//! `ValueSet` with `expansion`) or a [`TerminologyError`], whose [`ErrorKind`] lets the one
//! OperationOutcome conversion pick the status.

mod code_system;
mod code_system_operations;
mod concept_map;
mod error;
mod expand;
mod filter;
mod masters;
mod parameters;
mod registry;
mod service;
mod value_set;

pub use code_system_operations::Subsumption;
pub use concept_map::TranslateParams;
pub use error::{ErrorKind, ResourceKind, Result, TerminologyError};
pub use expand::{ExpandParams, Membership, ValueSetSource};
pub use masters::{
    load_master, MasterFormat, MasterLoad, HOT9_URL, ICD10_URL, JLAC10_URL, MEDIS_DISEASE_URL, MEDIS_ICD10_MAP_URL,
    YJ_URL,
};
pub use service::Terminology;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_is_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Terminology>();
    }
}
