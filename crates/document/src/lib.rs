//! FHIR documents for people: a document Bundle (JP-CLINS 診療情報提供書, 退院時サマリー,
//! 健診結果報告書, 患者サマリー, `$summary`'s output, or any other) rendered as one readable,
//! printable Japanese HTML page — title, patient (kanji and kana), authors and institution,
//! then every section in order with its narrative and its entries laid out by type.
//!
//! This crate owns the rendering and nothing around it. It never speaks HTTP (the server
//! picks it for `_format=html` / `Accept: text/html`), never reads or writes storage (it is
//! handed the Bundle), never checks or applies signatures, and never validates the document
//! against its profiles: what is there is shown, what is missing is shown as missing.
//!
//! Safety is structural. Markup is only ever written from this crate's literals; every
//! value from the document is escaped on the way out ([`escape`]). Narratives are shown as
//! markup only when they pass FHIR's narrative rules, and even then are re-emitted from a
//! parse with a short list of elements and attributes ([`narrative`]). The page has no
//! script, loads nothing from anywhere, and says so in its Content-Security-Policy.

mod clinical;
mod codes;
mod cx;
mod entries;
mod error;
mod escape;
mod fields;
mod labels;
mod medication;
mod narrative;
mod observation;
mod page;
mod parties;
mod patient;
mod resolve;
mod sections;
mod values;

use serde_json::Value;

pub use error::{NotDocument, RenderError};
pub use labels::Lang;
pub use sections::MAX_SECTION_DEPTH;

/// How to render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// The language of the page's labels (the document's own text is never translated).
    pub lang: Lang,
    /// This server's base URL (e.g. `https://fhir.example.jp/fhir`). References of the
    /// form `[base]/Type/id`, and relative `Type/id` references from entries whose `fullUrl`
    /// is not a RESTful URL, are looked up against it among the Bundle's entries.
    pub base_url: Option<String>,
}

/// Renders the document Bundle `bundle` as a complete HTML5 page (UTF-8).
///
/// Fails only when `bundle` is not a document (a Bundle of type `document` whose first
/// entry is a Composition); everything else — unresolved references, unsafe narratives,
/// unknown resource types — is rendered as far as it can be.
pub fn render_html(bundle: &Value, options: &RenderOptions) -> Result<String, RenderError> {
    let not_document = |why| Err(RenderError::NotADocument(why));
    let kind = resolve::str_at(bundle, "resourceType");
    if kind != Some("Bundle") {
        return not_document(NotDocument::NotABundle(kind.map(str::to_owned)));
    }
    match resolve::str_at(bundle, "type") {
        Some("document") => {}
        other => return not_document(NotDocument::WrongType(other.map(str::to_owned))),
    }
    let first = bundle.get("entry").and_then(Value::as_array).and_then(|e| e.first());
    let Some(first) = first else { return not_document(NotDocument::NoEntries) };
    let first_kind = first.get("resource").and_then(|r| resolve::str_at(r, "resourceType"));
    if first_kind != Some("Composition") {
        return not_document(NotDocument::FirstNotComposition(first_kind.map(str::to_owned)));
    }

    let cx = cx::Cx {
        index: resolve::Index::new(bundle, options.base_url.as_deref()),
        lang: options.lang,
        t: options.lang.labels(),
    };
    let composition = cx.index.first().expect("the first entry was checked to hold a Composition");
    let entries = bundle.get("entry").and_then(Value::as_array).map_or(0, Vec::len);
    Ok(page::page(&cx, bundle, composition, 8192 + entries * 512))
}
