//! Attachment (datatypes.html §Attachment): `size` is "the number of bytes of data that
//! make up this content (before base64 encoding)", `hash` "the calculated hash of the data
//! using SHA-1, represented using base64"; when `data` is inline both must agree with it.
//! A wrong size is an error; a wrong hash a warning, since the R4 examples themselves
//! carry one (DiagnosticReport-example-pgx, a hex string) and the HL7 validator leaves
//! hashes unchecked.

use base64::Engine;
use serde_json::Value;
use sha1::{Digest, Sha1};
use tsunagu_fhirpath::Node;
use tsunagu_format::{IssueType, Severity};

use crate::walk::Walk;

impl<'a> Walk<'_, 'a> {
    pub(crate) fn check_attachment(&mut self, node: &Node<'a>) {
        let Some(json) = node.value else { return };
        let Some(data) = json.get("data").and_then(Value::as_str) else { return };
        // The structure check reports data that is not base64; nothing to compare then.
        let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) else { return };
        if let Some(size) = json.get("size").and_then(Value::as_u64) {
            if size != bytes.len() as u64 {
                let loc = self.location(node);
                self.push(
                    Severity::Error,
                    IssueType::Value,
                    format!("{loc}.size"),
                    format!("Attachment size is {size}, but the data has {} bytes", bytes.len()),
                    format!("Attachment の size は {size} ですが、data は {} バイトです", bytes.len()),
                );
            }
        }
        if let Some(hash) = json.get("hash").and_then(Value::as_str) {
            let actual = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(&bytes));
            if hash.trim() != actual {
                let loc = self.location(node);
                self.push(
                    Severity::Warning,
                    IssueType::Value,
                    format!("{loc}.hash"),
                    format!("Attachment hash {hash} is not the SHA-1 of the data ({actual}, base64)"),
                    format!("Attachment の hash {hash} が data の SHA-1（{actual}）と一致しません"),
                );
            }
        }
    }
}
