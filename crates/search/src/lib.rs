//! FHIR search semantics (R4 search.html), between the FHIR world and the store:
//!
//! - [`SearchRegistry`] knows every search parameter of every resource type (the R4 ones
//!   from the model facts; package-defined ones later), compiles their FHIRPath expressions
//!   once, and extracts index entries from a resource on every write.
//! - [`parse_search`] turns the parameters of a search URL (modifiers, prefixes, chains,
//!   `_has`, `_sort`, `_include`, composites, `_text`/`_content`, token `:in`/`:below`
//!   through the terminology service) into a store [`SearchQuery`](tsunagu_store::SearchQuery).
//! - [`contained_matches`] matches one contained resource in memory (`_contained`).
//! - [`normalize`] is the one text normalisation used on both sides, so that ﾔﾏﾀﾞ, やまだ and
//!   ヤマダ find the same patient.
//!
//! It never runs queries, speaks HTTP or builds Bundles: the interaction layer does.

mod composite;
mod contained;
mod error;
mod extract;
mod fulltext;
mod parse;
mod range;
mod registry;
mod token_terms;

pub use contained::{contained_matches, resource_matches, CONTAINED_TYPE_PARAM};
pub use error::SearchError;
pub use parse::{parse_search, Include, ParsedSearch};
pub use range::parse_range;
pub use registry::{Component, ParamDef, SearchRegistry};
pub use tsunagu_text::normalize;
