//! Why a Bundle cannot be rendered as a document. Everything else (unresolved references,
//! unsafe narratives, odd values) is rendered as best it can be, never refused: a person
//! reading the page is better served by a partial document that says what is missing.

use std::fmt;

/// A failure of [`crate::render_html`], with messages for both audiences of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenderError {
    /// The input is not a FHIR document (Bundle of type `document` whose first entry is a
    /// Composition); the reason says which part is missing.
    NotADocument(NotDocument),
}

/// Which rule of a document Bundle (bundle.html, bdl-11) the input breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDocument {
    /// Not a Bundle at all; holds the `resourceType` found, if any.
    NotABundle(Option<String>),
    /// A Bundle whose `type` is not `document`; holds the type found, if any.
    WrongType(Option<String>),
    /// A document Bundle with no entries.
    NoEntries,
    /// The first entry is not a Composition; holds its `resourceType`, if any.
    FirstNotComposition(Option<String>),
}

impl RenderError {
    /// The message in English.
    pub fn message_en(&self) -> String {
        match self {
            RenderError::NotADocument(why) => match why {
                NotDocument::NotABundle(found) => {
                    format!("not a document: expected a Bundle, found {}", or_none(found))
                }
                NotDocument::WrongType(found) => {
                    format!("not a document: Bundle.type is {}, not 'document'", or_none(found))
                }
                NotDocument::NoEntries => "not a document: the Bundle has no entries".to_owned(),
                NotDocument::FirstNotComposition(found) => {
                    format!("not a document: the first entry must be a Composition, found {}", or_none(found))
                }
            },
        }
    }

    /// The message in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            RenderError::NotADocument(why) => match why {
                NotDocument::NotABundle(found) => {
                    format!("文書ではありません: Bundle が必要ですが {} です", or_nashi(found))
                }
                NotDocument::WrongType(found) => {
                    format!("文書ではありません: Bundle.type が 'document' ではなく {} です", or_nashi(found))
                }
                NotDocument::NoEntries => "文書ではありません: Bundle にエントリがありません".to_owned(),
                NotDocument::FirstNotComposition(found) => {
                    format!(
                        "文書ではありません: 最初のエントリは Composition でなければなりませんが {} です",
                        or_nashi(found)
                    )
                }
            },
        }
    }
}

fn or_none(found: &Option<String>) -> String {
    found.as_ref().map_or_else(|| "nothing".to_owned(), |s| format!("'{s}'"))
}

fn or_nashi(found: &Option<String>) -> String {
    found.as_ref().map_or_else(|| "（なし）".to_owned(), |s| format!("'{s}'"))
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message_en())
    }
}

impl std::error::Error for RenderError {}
