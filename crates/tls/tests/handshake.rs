//! Real handshakes on 127.0.0.1 between the server configuration of this crate and
//! tokio-rustls clients (ring provider), with certificates made by rcgen for each test.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tsunagu_tls::{certificate_thumbprint, server_config, TlsAcceptor, TlsError, TlsSettings, TlsVersion};

const LIMIT: Duration = Duration::from_secs(5);
const GREETING: &[u8] = b"hello over TLS";
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

// ---------------------------------------------------------------------------------------------
// Certificates

struct Issued {
    cert: Certificate,
    key: KeyPair,
}

impl Issued {
    fn ca(name: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Issued { cert, key }
    }

    fn leaf(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Issued {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued { cert, key }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

/// A CA with a server certificate for `localhost` and a client certificate, another CA with a
/// client certificate of its own, all written as PEM to a temporary directory.
struct Pki {
    dir: TempDir,
    ca: Issued,
    client: Issued,
    stranger: Issued,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Issued::ca("Tsunagu test CA");
        let server = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let client = ca.leaf(&["client-a"], ExtendedKeyUsagePurpose::ClientAuth);
        let other_ca = Issued::ca("Some other CA");
        let stranger = other_ca.leaf(&["client-b"], ExtendedKeyUsagePurpose::ClientAuth);
        let unrelated_key = KeyPair::generate().unwrap();

        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca.cert.pem());
        // The chain as servers usually hold it: leaf first, then its issuer.
        write("server.pem", format!("{}{}", server.cert.pem(), ca.cert.pem()));
        write("server.key", server.key.serialize_pem());
        write("server-sec1.key", pem("EC PRIVATE KEY", &sec1_from_pkcs8(&server.key.serialize_der())));
        write("unrelated.key", unrelated_key.serialize_pem());
        write("empty.pem", String::new());
        Pki { dir, ca, client, stranger }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn settings(&self) -> TlsSettings {
        TlsSettings::new(self.path("server.pem"), self.path("server.key"))
    }

    fn with_client_ca(&self) -> TlsSettings {
        TlsSettings { client_ca: Some(self.path("ca.pem")), ..self.settings() }
    }

    fn client(&self, versions: &[&'static SupportedProtocolVersion], cert: Option<&Issued>) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der()).unwrap();
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match cert {
            Some(issued) => builder.with_client_auth_cert(vec![issued.der()], issued.key_der()).unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

/// The SEC1 `ECPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (its `privateKey` OCTET STRING).
fn sec1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let (tag, first) = (input[0], input[1] as usize);
        let (len, start) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            (input[2..2 + n].iter().fold(0, |acc, b| acc << 8 | *b as usize), 2 + n)
        };
        (tag, &input[start..start + len], &input[start + len..])
    }
    let (_, info, _) = tlv(pkcs8);
    let (_, _version, rest) = tlv(info);
    let (_, _algorithm, rest) = tlv(rest);
    let (tag, private_key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
    private_key.to_vec()
}

// ---------------------------------------------------------------------------------------------
// One server connection, one client

#[derive(Debug)]
struct Served {
    thumbprint: Option<String>,
    alpn: Option<Vec<u8>>,
    version: Option<ProtocolVersion>,
}

async fn serve_once(settings: &TlsSettings, limit: Duration) -> (SocketAddr, JoinHandle<io::Result<Served>>) {
    let acceptor = TlsAcceptor::from_settings(settings).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let (mut tls, thumbprint) = acceptor.accept_within(tcp, limit).await?;
        let conn = tls.get_ref().1;
        let served =
            Served { thumbprint, alpn: conn.alpn_protocol().map(<[u8]>::to_vec), version: conn.protocol_version() };
        tls.write_all(GREETING).await?;
        tls.shutdown().await?;
        Ok(served)
    });
    (addr, task)
}

/// Connects, reads what the server says until it closes; returns that and the ALPN protocol.
async fn connect(addr: SocketAddr, config: ClientConfig) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = TlsConnector::from(Arc::new(config)).connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let mut said = Vec::new();
    tls.read_to_end(&mut said).await?;
    Ok((said, alpn))
}

/// A handshake expected to succeed, both ends checked.
async fn handshake(settings: &TlsSettings, client: ClientConfig) -> Served {
    let (addr, server) = serve_once(settings, LIMIT).await;
    let (said, alpn) = connect(addr, client).await.expect("client handshake");
    let served = server.await.unwrap().expect("server handshake");
    assert_eq!(said, GREETING);
    assert_eq!(alpn, served.alpn);
    served
}

/// A handshake expected to fail: the server must refuse it, and the client must not get the
/// greeting (in TLS 1.3 a refused client certificate shows only on the client's first read).
async fn refused(settings: &TlsSettings, client: ClientConfig) -> io::Error {
    let (addr, server) = serve_once(settings, LIMIT).await;
    let client = connect(addr, client).await;
    let err = server.await.unwrap().expect_err("server refuses the handshake");
    assert!(client.is_err(), "client got through: {client:?}");
    err
}

// ---------------------------------------------------------------------------------------------
// Handshakes

#[tokio::test]
async fn tls13_handshake_negotiates_h2() {
    let pki = Pki::new();
    let served = handshake(&pki.settings(), pki.client(TLS13, None)).await;
    assert_eq!(served.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(served.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(served.thumbprint, None);
}

#[tokio::test]
async fn alpn_falls_back_to_http11_and_is_optional() {
    let pki = Pki::new();
    let mut http11 = pki.client(TLS13, None);
    http11.alpn_protocols = vec![b"http/1.1".to_vec()];
    assert_eq!(handshake(&pki.settings(), http11).await.alpn.as_deref(), Some(&b"http/1.1"[..]));

    let mut no_alpn = pki.client(TLS13, None);
    no_alpn.alpn_protocols.clear();
    assert_eq!(handshake(&pki.settings(), no_alpn).await.alpn, None);
}

#[tokio::test]
async fn tls12_client_is_refused_by_default() {
    let pki = Pki::new();
    assert_eq!(pki.settings().min_version, TlsVersion::Tls13);
    let err = refused(&pki.settings(), pki.client(TLS12, None)).await;
    assert!(err.to_string().contains("Tls12NotOfferedOrEnabled"), "{err}");
}

#[tokio::test]
async fn tls12_client_is_accepted_when_configured() {
    let pki = Pki::new();
    let settings = TlsSettings { min_version: TlsVersion::Tls12, ..pki.settings() };
    let served = handshake(&settings, pki.client(TLS12, None)).await;
    assert_eq!(served.version, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(served.alpn.as_deref(), Some(&b"h2"[..]));
    // TLS 1.3 stays preferred.
    let served = handshake(&settings, pki.client(&[&rustls::version::TLS12, &rustls::version::TLS13], None)).await;
    assert_eq!(served.version, Some(ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn sec1_key_is_accepted() {
    let pki = Pki::new();
    let settings = TlsSettings { key: pki.path("server-sec1.key"), ..pki.settings() };
    assert!(std::fs::read_to_string(&settings.key).unwrap().starts_with("-----BEGIN EC PRIVATE KEY-----"));
    handshake(&settings, pki.client(TLS13, None)).await;
}

// ---------------------------------------------------------------------------------------------
// Client certificates

#[tokio::test]
async fn client_certificate_from_the_ca_yields_its_thumbprint() {
    let pki = Pki::new();
    let expected = certificate_thumbprint(pki.client.cert.der());
    let served = handshake(&pki.with_client_ca(), pki.client(TLS13, Some(&pki.client))).await;
    assert_eq!(served.thumbprint.as_deref(), Some(expected.as_str()));

    let settings = TlsSettings { min_version: TlsVersion::Tls12, ..pki.with_client_ca() };
    let served = handshake(&settings, pki.client(TLS12, Some(&pki.client))).await;
    assert_eq!(served.thumbprint, Some(expected));
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let err = refused(&pki.with_client_ca(), pki.client(TLS13, Some(&pki.stranger))).await;
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let settings = TlsSettings { min_version: TlsVersion::Tls12, ..pki.with_client_ca() };
    let err = refused(&settings, pki.client(TLS12, Some(&pki.stranger))).await;
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn client_certificates_are_optional() {
    let pki = Pki::new();
    let served = handshake(&pki.with_client_ca(), pki.client(TLS13, None)).await;
    assert_eq!(served.thumbprint, None);
}

#[tokio::test]
async fn without_client_ca_no_certificate_is_asked_for() {
    let pki = Pki::new();
    // The client would present one if asked; the server does not ask.
    let served = handshake(&pki.settings(), pki.client(TLS13, Some(&pki.stranger))).await;
    assert_eq!(served.thumbprint, None);
}

#[test]
fn thumbprint_is_base64url_sha256_without_padding() {
    // SHA-256 of the empty input, base64url without padding.
    assert_eq!(certificate_thumbprint(b""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
    let pki = Pki::new();
    let thumbprint = certificate_thumbprint(pki.client.cert.der());
    assert_eq!(thumbprint.len(), 43);
    assert!(thumbprint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
}

// ---------------------------------------------------------------------------------------------
// Handshake timeout

#[tokio::test]
async fn silent_client_is_cut_by_the_handshake_timeout() {
    let pki = Pki::new();
    let limit = Duration::from_millis(200);
    let (addr, server) = serve_once(&pki.settings(), limit).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let err = server.await.unwrap().expect_err("the handshake times out");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() >= limit && started.elapsed() < LIMIT, "{:?}", started.elapsed());
    // The server dropped the connection: the client sees end of stream (or a reset).
    let mut buf = [0u8; 1];
    assert!(matches!(silent.read(&mut buf).await, Ok(0) | Err(_)));
}

// ---------------------------------------------------------------------------------------------
// Bad files

fn error_for(settings: &TlsSettings) -> TlsError {
    server_config(settings).expect_err("the configuration is refused")
}

fn names(err: &TlsError, path: &Path) -> bool {
    err.to_string().contains(&path.display().to_string())
}

#[test]
fn key_of_another_certificate_is_a_mismatch() {
    let pki = Pki::new();
    let settings = TlsSettings { key: pki.path("unrelated.key"), ..pki.settings() };
    let err = error_for(&settings);
    assert!(matches!(&err, TlsError::KeyMismatch { cert, key } if *cert == settings.cert && *key == settings.key));
    assert!(names(&err, &settings.cert) && names(&err, &settings.key), "{err}");
}

#[test]
fn empty_certificate_file_has_no_certificate() {
    let pki = Pki::new();
    let settings = TlsSettings { cert: pki.path("empty.pem"), ..pki.settings() };
    let err = error_for(&settings);
    assert!(matches!(&err, TlsError::NoCertificate { path } if *path == settings.cert), "{err:?}");
    assert!(names(&err, &settings.cert), "{err}");
}

#[test]
fn key_file_without_a_key_has_no_key() {
    let pki = Pki::new();
    for file in ["empty.pem", "ca.pem"] {
        let settings = TlsSettings { key: pki.path(file), ..pki.settings() };
        let err = error_for(&settings);
        assert!(matches!(&err, TlsError::NoPrivateKey { path } if *path == settings.key), "{err:?}");
        assert!(names(&err, &settings.key), "{err}");
    }
}

#[test]
fn missing_files_are_named() {
    let pki = Pki::new();
    let missing = pki.path("nowhere.pem");
    let cases = [
        TlsSettings { cert: missing.clone(), ..pki.settings() },
        TlsSettings { key: missing.clone(), ..pki.settings() },
        TlsSettings { client_ca: Some(missing.clone()), ..pki.settings() },
    ];
    for settings in cases {
        let err = error_for(&settings);
        assert!(
            matches!(&err, TlsError::Read { path, source } if *path == missing && source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(names(&err, &missing), "{err}");
    }
}

#[test]
fn empty_client_ca_file_has_no_certificate() {
    let pki = Pki::new();
    let settings = TlsSettings { client_ca: Some(pki.path("empty.pem")), ..pki.settings() };
    let err = error_for(&settings);
    assert!(matches!(&err, TlsError::NoCertificate { path } if *path == pki.path("empty.pem")), "{err:?}");
}
