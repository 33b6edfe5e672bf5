//! FHIR R4 wire formats for Tsunagu: JSON read strictly (no property named twice),
//! lossless JSON ⇄ XML conversion, the base-structure
//! check of incoming resources against the core R4 definitions, and output shaping for
//! `_summary` / `_elements`.
//!
//! This crate owns the representation rules of json.html and xml.html and nothing else.
//! It never speaks HTTP, never stores anything, never evaluates FHIRPath or profiles, and
//! never builds OperationOutcome JSON: it reports [`Issue`]s that the server converts. All
//! structural knowledge comes from `tsunagu-model`.

mod error;
mod issue;
mod json_read;
mod names;
mod primitive;
mod shaping;
mod structure;
mod xhtml;
mod xml_read;
mod xml_write;

pub use error::FormatError;
pub use issue::{Issue, IssueType, Severity};
pub use json_read::json_from_slice;
pub use shaping::{elements, summary, SummaryMode};
pub use structure::{check_structure, check_structure_limited, truncation_issue};
pub use xhtml::{check_narrative, internal_links, link_targets, InternalLink};
pub use xml_read::{xml_to_json, xml_to_json_limited};
pub use xml_write::{first_non_xml_char, is_xml_char, json_to_xml};
