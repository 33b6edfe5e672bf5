//! hcRole: the healthcare qualification an HPKI certificate asserts (ISO 17090).
//!
//! It sits in the SubjectDirectoryAttributes extension (2.5.29.9):
//!
//! ```text
//! SubjectDirectoryAttributes ::= SEQUENCE OF Attribute
//! Attribute      ::= SEQUENCE { type OBJECT IDENTIFIER, values SET OF ANY }
//!   -- type 1.0.17090.0.1 (hcRole); each value is ISO 17090 HCActorData / HCActor:
//! HCActor        ::= SEQUENCE { codedData [0] CodedData OPTIONAL,
//!                               regionalHCActor [1] SEQUENCE OF CodedData OPTIONAL }
//! CodedData      ::= SEQUENCE { codingSchemeReference OBJECT IDENTIFIER,
//!                               codeDataValue <character string> }
//! ```
//!
//! x509-parser hands this extension over unparsed, so a small DER reader is written here.
//! Because issuers differ on how many SET/SEQUENCE layers wrap HCActor (HCActorData is itself a
//! SET OF HCActor) and whether the context tags are explicit, the reader walks everything under
//! an hcRole attribute and takes each constructed value that is exactly
//! `{ OBJECT IDENTIFIER, character string }` as one CodedData. Nothing outside an hcRole
//! attribute is read, so other directory attributes cannot pose as a role.

/// SubjectDirectoryAttributes extension.
pub const SUBJECT_DIRECTORY_ATTRIBUTES: &str = "2.5.29.9";
/// ISO 17090 hcRole attribute type.
pub const HC_ROLE_ATTRIBUTE: &str = "1.0.17090.0.1";
/// The Japanese HPKI coding scheme for hcRole values ("Medical Doctor", "Pharmacist", ...).
pub const JP_HC_ROLE_SCHEME: &str = "1.2.392.100495.1.6.1.1";

/// One hcRole value: the coding scheme OID and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcRole {
    pub scheme: String,
    pub value: String,
}

/// The hcRole values in the DER content of a SubjectDirectoryAttributes extension.
pub fn hc_roles(extension_value: &[u8]) -> Result<Vec<HcRole>, String> {
    let attributes = Der::one(extension_value)?;
    if attributes.tag != SEQUENCE {
        return Err("SubjectDirectoryAttributes is not a SEQUENCE".into());
    }
    let mut roles = Vec::new();
    for attribute in attributes.children()? {
        let parts = attribute.children()?;
        let [kind, values] = parts.as_slice() else {
            return Err("attribute is not { type, values }".into());
        };
        if kind.tag != OID || values.tag != SET {
            return Err("attribute is not { OBJECT IDENTIFIER, SET }".into());
        }
        if oid_string(kind.content)? == HC_ROLE_ATTRIBUTE {
            collect_coded_data(values, &mut roles, 0)?;
        }
    }
    Ok(roles)
}

fn collect_coded_data(node: &Der, roles: &mut Vec<HcRole>, depth: usize) -> Result<(), String> {
    if depth > 8 {
        return Err("hcRole nested too deeply".into());
    }
    if !node.constructed() {
        return Ok(());
    }
    let children = node.children()?;
    if let [scheme, value] = children.as_slice() {
        if scheme.tag == OID && is_string(value.tag) {
            roles.push(HcRole {
                scheme: oid_string(scheme.content)?,
                value: String::from_utf8(value.content.to_vec()).map_err(|_| "hcRole text is not UTF-8".to_string())?,
            });
            return Ok(());
        }
    }
    for child in &children {
        collect_coded_data(child, roles, depth + 1)?;
    }
    Ok(())
}

const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// UTF8String, PrintableString, IA5String (BMPString is not used by HPKI issuers).
fn is_string(tag: u8) -> bool {
    matches!(tag, 0x0c | 0x13 | 0x16)
}

/// One DER TLV: tag byte (single-byte tags only) and content.
pub(crate) struct Der<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

impl<'a> Der<'a> {
    /// Reads exactly one TLV filling `input`.
    pub fn one(input: &'a [u8]) -> Result<Self, String> {
        let (der, rest) = Self::next(input)?;
        if !rest.is_empty() {
            return Err("trailing bytes after DER value".into());
        }
        Ok(der)
    }

    fn next(input: &'a [u8]) -> Result<(Self, &'a [u8]), String> {
        let short = || "truncated DER".to_string();
        let (&tag, rest) = input.split_first().ok_or_else(short)?;
        if tag & 0x1f == 0x1f {
            return Err("multi-byte DER tags are not expected here".into());
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(short)?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err("bad DER length".into());
            }
            let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(short());
        }
        Ok((Der { tag, content: &rest[..len] }, &rest[len..]))
    }

    pub fn constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// The TLVs inside a constructed value.
    pub fn children(&self) -> Result<Vec<Der<'a>>, String> {
        if !self.constructed() {
            return Err("primitive DER value where a constructed one was expected".into());
        }
        let mut rest = self.content;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (der, after) = Der::next(rest)?;
            out.push(der);
            rest = after;
        }
        Ok(out)
    }
}

/// Dotted form of an OBJECT IDENTIFIER's content octets.
pub(crate) fn oid_string(content: &[u8]) -> Result<String, String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return Err("OID arc too large".into());
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return Err("truncated OID".into());
        }
    }
    if arcs.is_empty() {
        return Err("empty OID".into());
    }
    Ok(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_text() {
        // 1.0.17090.0.1: first byte 40*1+0, then 17090 = 0x85 0x85 0x42.
        assert_eq!(oid_string(&[0x28, 0x81, 0x85, 0x42, 0x00, 0x01]).unwrap(), "1.0.17090.0.1");
        assert_eq!(oid_string(&[0x55, 0x1d, 0x09]).unwrap(), SUBJECT_DIRECTORY_ATTRIBUTES);
        assert!(oid_string(&[0x55, 0x9d]).is_err());
    }

    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let content = parts.concat();
        assert!(content.len() < 0x80);
        [&[tag, content.len() as u8][..], &content].concat()
    }

    const HC_ROLE: &[u8] = &[0x06, 0x06, 0x28, 0x81, 0x85, 0x42, 0x00, 0x01];
    // 1.2.392.100495.1.6.1.1
    const JP: &[u8] = &[0x06, 0x0a, 0x2a, 0x83, 0x08, 0x86, 0x91, 0x0f, 0x01, 0x06, 0x01, 0x01];

    #[test]
    fn implicit_tags_and_extra_set_layers_are_read() {
        // HCActorData SET around the HCActor, [0] IMPLICIT CodedData, UTF8String.
        let coded = tlv(0xa0, &[JP, &tlv(0x0c, &[b"Pharmacist"])]);
        let actor = tlv(0x30, &[&coded]);
        let attribute = tlv(0x30, &[HC_ROLE, &tlv(0x31, &[&tlv(0x31, &[&actor])])]);
        let roles = hc_roles(&tlv(0x30, &[&attribute])).unwrap();
        assert_eq!(roles, vec![HcRole { scheme: JP_HC_ROLE_SCHEME.into(), value: "Pharmacist".into() }]);
    }

    #[test]
    fn other_attributes_are_not_roles() {
        // dateOfBirth-like attribute 1.3.6.1.5.5.7.9.1 holding an { OID, string } pair.
        let other_oid: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x09, 0x01];
        let pair = tlv(0x30, &[JP, &tlv(0x13, &[b"Medical Doctor"])]);
        let attribute = tlv(0x30, &[other_oid, &tlv(0x31, &[&pair])]);
        assert_eq!(hc_roles(&tlv(0x30, &[&attribute])).unwrap(), vec![]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(hc_roles(&[]).is_err());
        assert!(hc_roles(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_err());
        assert!(hc_roles(&[0x30, 0x03, 0x30, 0x01, 0x06]).is_err());
        assert_eq!(hc_roles(&[0x30, 0x00]).unwrap(), vec![]);
    }
}
