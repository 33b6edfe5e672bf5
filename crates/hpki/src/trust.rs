//! What an operator configures: the HPKI roots, the CRLs, the certificate policies accepted.

use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::error::{encoding, SignatureError};

/// HPKI signing certificate policy (署名用証明書ポリシー) of the MHLW HPKI chain.
pub const HPKI_SIGNING_POLICY: &str = "1.2.392.100495.1.5.1.1.0.1";

/// Trust anchors (HPKI root certificates), CRLs, and the certificate policies a signer's
/// certificate must assert.
///
/// CRLs are kept as given and read at each verification, because the CA that issues a CRL is
/// usually an intermediate that only arrives in a signature's `x5c`: its signature on the CRL
/// is checked then, against that issuer. A CRL issued by a root is also checked when added.
#[derive(Debug, Clone)]
pub struct TrustStore {
    anchors: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    accepted_policies: Vec<String>,
}

impl Default for TrustStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TrustStore {
    /// No anchors, no CRLs; signer certificates must assert [`HPKI_SIGNING_POLICY`].
    pub fn new() -> Self {
        TrustStore { anchors: Vec::new(), crls: Vec::new(), accepted_policies: vec![HPKI_SIGNING_POLICY.to_string()] }
    }

    /// Replaces the accepted signer certificate policies (any one must be in the leaf's
    /// CertificatePolicies). An empty list accepts any policy, or none.
    pub fn with_accepted_policies<S: Into<String>>(mut self, policies: impl IntoIterator<Item = S>) -> Self {
        self.accepted_policies = policies.into_iter().map(Into::into).collect();
        self
    }

    pub fn accepted_policies(&self) -> &[String] {
        &self.accepted_policies
    }

    /// Adds trust anchors from PEM (`CERTIFICATE` blocks) or one DER certificate (a `.cer`
    /// as roots are often published); returns how many.
    pub fn add_anchors(&mut self, bytes: &[u8]) -> Result<usize, SignatureError> {
        if bytes.first() == Some(&0x30) {
            self.add_anchor_der(bytes)?;
            Ok(1)
        } else {
            self.add_anchors_pem(bytes)
        }
    }

    /// Adds every CERTIFICATE in a PEM file as a trust anchor; returns how many.
    pub fn add_anchors_pem(&mut self, pem: &[u8]) -> Result<usize, SignatureError> {
        let ders = pem_blocks(pem, "CERTIFICATE")?;
        if ders.is_empty() {
            return Err(encoding("no CERTIFICATE block in the trust anchor PEM"));
        }
        for der in &ders {
            self.add_anchor_der(der)?;
        }
        Ok(ders.len())
    }

    /// Adds one DER certificate as a trust anchor.
    pub fn add_anchor_der(&mut self, der: &[u8]) -> Result<(), SignatureError> {
        X509Certificate::from_der(der).map_err(|e| encoding(format!("trust anchor does not parse: {e}")))?;
        if !self.anchors.iter().any(|a| a == der) {
            self.anchors.push(der.to_vec());
        }
        Ok(())
    }

    /// Adds CRLs from PEM (`X509 CRL` blocks) or one DER CRL; returns how many.
    pub fn add_crls(&mut self, bytes: &[u8]) -> Result<usize, SignatureError> {
        // A DER CRL starts with a SEQUENCE tag; anything else is read as PEM.
        if bytes.first() != Some(&0x30) {
            let ders = pem_blocks(bytes, "X509 CRL")?;
            if ders.is_empty() {
                return Err(encoding("no X509 CRL block in the CRL PEM"));
            }
            for der in &ders {
                self.add_crl_der(der)?;
            }
            Ok(ders.len())
        } else {
            self.add_crl_der(bytes)?;
            Ok(1)
        }
    }

    /// Adds one DER CRL. If a trust anchor issued it, its signature is checked now.
    pub fn add_crl_der(&mut self, der: &[u8]) -> Result<(), SignatureError> {
        let (_, crl) =
            CertificateRevocationList::from_der(der).map_err(|e| encoding(format!("CRL does not parse: {e}")))?;
        for anchor in self.anchors() {
            if anchor.subject().as_raw() == crl.issuer().as_raw() {
                crate::crl::check_crl_signature(&crl, &anchor)?;
            }
        }
        self.crls.push(der.to_vec());
        Ok(())
    }

    pub(crate) fn anchors(&self) -> impl Iterator<Item = X509Certificate<'_>> {
        // Parsed when added, so they parse again.
        self.anchors.iter().filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
    }

    pub(crate) fn is_anchor(&self, der: &[u8]) -> bool {
        self.anchors.iter().any(|a| a == der)
    }

    pub(crate) fn crls(&self) -> impl Iterator<Item = CertificateRevocationList<'_>> {
        self.crls.iter().filter_map(|der| CertificateRevocationList::from_der(der).ok().map(|(_, c)| c))
    }

    /// Number of anchors and CRLs configured (for start-up logs).
    pub fn counts(&self) -> (usize, usize) {
        (self.anchors.len(), self.crls.len())
    }
}

fn pem_blocks(pem: &[u8], label: &str) -> Result<Vec<Vec<u8>>, SignatureError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| encoding(format!("PEM does not parse: {e}")))?;
        if block.label == label {
            out.push(block.contents);
        }
    }
    Ok(out)
}
