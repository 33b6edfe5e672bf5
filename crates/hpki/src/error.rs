//! The one error type: every way a document signature can fail, each with an English and a
//! Japanese message so the server can answer in the caller's language.

use thiserror::Error;

/// Why a signature was not accepted (or could not be made).
///
/// `detail` fields carry technical context for logs and operators; the bilingual messages
/// ([`message_en`](Self::message_en), [`message_ja`](Self::message_ja)) name the failure and
/// the certificate involved, never key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The Bundle has no `signature`.
    #[error("the document has no signature")]
    Missing,
    /// Not a Bundle, not `application/jose`, another canonicalization, an unsupported `alg`
    /// or a JWS `crit` header this crate does not understand.
    #[error("unsupported signature format: {detail}")]
    UnsupportedFormat { detail: String },
    /// `Signature.data` is not base64 of a JWS, the header is not JSON, or a certificate
    /// does not parse.
    #[error("badly encoded signature: {detail}")]
    BadEncoding { detail: String },
    /// The JWS header has no `x5c` certificate chain.
    #[error("the signature carries no certificate chain (x5c)")]
    MissingCertificates,
    /// The signature does not match the document: the content was altered after signing,
    /// or it was signed with another key.
    #[error("the signature does not match the document")]
    BadSignature,
    /// The chain does not lead to a configured trust anchor (HPKI root).
    #[error("certificate chain not trusted: {detail}")]
    Untrusted { detail: String },
    /// A certificate in the chain is not fit for its place (key usage, basic constraints,
    /// an unknown critical extension, a certificate policy that is not accepted).
    #[error("certificate {subject} not acceptable: {detail}")]
    InvalidCertificate { subject: String, detail: String },
    /// A certificate's validity ended before the verification time.
    #[error("certificate {subject} expired on {not_after}")]
    Expired { subject: String, not_after: String },
    /// A certificate's validity starts after the verification time.
    #[error("certificate {subject} is not valid before {not_before}")]
    NotYetValid { subject: String, not_before: String },
    /// A configured CRL lists the certificate.
    #[error("certificate {subject} (serial {serial}) was revoked on {revoked_at}")]
    Revoked { subject: String, serial: String, revoked_at: String },
    /// A configured CRL for an issuer in the chain cannot be relied on (bad signature,
    /// past its nextUpdate, a delta CRL), so revocation cannot be decided.
    #[error("CRL from {issuer} unusable: {detail}")]
    CrlUnusable { issuer: String, detail: String },
    /// The signer's hcRole is not one the document type requires.
    #[error("document type {document_type} needs hcRole {required:?}; the signer has {found:?}")]
    WrongRole { document_type: String, required: Vec<String>, found: Vec<String> },
    /// Signing failed (key does not parse or does not match the algorithm).
    #[error("signing failed: {detail}")]
    Signing { detail: String },
}

impl SignatureError {
    /// A short English message for an OperationOutcome or a log line.
    pub fn message_en(&self) -> String {
        match self {
            Self::Missing => "The document is not signed (Bundle.signature is missing).".into(),
            Self::UnsupportedFormat { detail } => {
                format!("The signature format is not supported: {detail}.")
            }
            Self::BadEncoding { detail } => format!("The signature is badly encoded: {detail}."),
            Self::MissingCertificates => "The signature carries no signer certificate chain (x5c).".into(),
            Self::BadSignature => "The signature does not match the document: it was altered after signing.".into(),
            Self::Untrusted { detail } => {
                format!("The signer's certificate is not issued under a trusted HPKI root: {detail}.")
            }
            Self::InvalidCertificate { subject, detail } => {
                format!("The certificate {subject} cannot be used for this signature: {detail}.")
            }
            Self::Expired { subject, not_after } => {
                format!("The certificate {subject} expired on {not_after}.")
            }
            Self::NotYetValid { subject, not_before } => {
                format!("The certificate {subject} is not valid until {not_before}.")
            }
            Self::Revoked { subject, serial, revoked_at } => {
                format!("The certificate {subject} (serial {serial}) was revoked on {revoked_at}.")
            }
            Self::CrlUnusable { issuer, detail } => {
                format!("Revocation cannot be checked: the CRL from {issuer} cannot be used ({detail}).")
            }
            Self::WrongRole { document_type, required, found } => format!(
                "A document of type {document_type} must be signed by: {}; the signer's HPKI role is: {}.",
                required.join(", "),
                list_or_none(found, "none")
            ),
            Self::Signing { detail } => format!("The document could not be signed: {detail}."),
        }
    }

    /// The same message in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            Self::Missing => "文書に電子署名がありません（Bundle.signature がありません）。".into(),
            Self::UnsupportedFormat { detail } => {
                format!("対応していない署名形式です: {detail}。")
            }
            Self::BadEncoding { detail } => format!("署名の符号化が不正です: {detail}。"),
            Self::MissingCertificates => "署名に署名者の証明書チェーン（x5c）がありません。".into(),
            Self::BadSignature => "署名が文書と一致しません。署名後に内容が改変されています。".into(),
            Self::Untrusted { detail } => {
                format!("署名者の証明書は信頼された HPKI ルート認証局の下で発行されていません: {detail}。")
            }
            Self::InvalidCertificate { subject, detail } => {
                format!("証明書 {subject} はこの署名に使用できません: {detail}。")
            }
            Self::Expired { subject, not_after } => {
                format!("証明書 {subject} の有効期限は {not_after} に切れています。")
            }
            Self::NotYetValid { subject, not_before } => {
                format!("証明書 {subject} は {not_before} まで有効になりません。")
            }
            Self::Revoked { subject, serial, revoked_at } => {
                format!("証明書 {subject}（シリアル番号 {serial}）は {revoked_at} に失効しています。")
            }
            Self::CrlUnusable { issuer, detail } => {
                format!("失効を確認できません: {issuer} の CRL を使用できません（{detail}）。")
            }
            Self::WrongRole { document_type, required, found } => format!(
                "文書種別 {document_type} には {} の署名が必要ですが、署名者の HPKI 資格は {} です。",
                required.join("、"),
                list_or_none(found, "なし")
            ),
            Self::Signing { detail } => format!("文書に署名できませんでした: {detail}。"),
        }
    }
}

fn list_or_none(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items.join(", ")
    }
}

pub(crate) fn encoding(detail: impl Into<String>) -> SignatureError {
    SignatureError::BadEncoding { detail: detail.into() }
}

pub(crate) fn unsupported(detail: impl Into<String>) -> SignatureError {
    SignatureError::UnsupportedFormat { detail: detail.into() }
}
