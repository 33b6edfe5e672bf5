//! The server over TLS: HTTPS answers, a client certificate registered for a client
//! authenticates it at the token endpoint (RFC 8705 tls_client_auth), and plain HTTP on
//! the TLS port gets nowhere.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "test CA");
        let ca_key = KeyPair::generate().unwrap();
        Pki { ca: p.self_signed(&ca_key).unwrap(), ca_key }
    }

    fn leaf(&self, name: &str, purpose: ExtendedKeyUsagePurpose) -> (rcgen::Certificate, KeyPair) {
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        (p.signed_by(&key, &self.ca, &self.ca_key).unwrap(), key)
    }
}

async fn https(
    port: u16,
    roots: &rustls::RootCertStore,
    client_cert: Option<(&rcgen::Certificate, &KeyPair)>,
    request: &str,
) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots.clone());
    let config = match client_cert {
        Some((c, k)) => builder
            .with_client_auth_cert(
                vec![c.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn https_with_a_client_certificate_that_names_a_client() {
    let pki = Pki::new();
    let (server_cert, server_key) = pki.leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = pki.leaf("lab-system", ExtendedKeyUsagePurpose::ClientAuth);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let settings = tsunagu_tls::TlsSettings {
        cert: write("server.pem", server_cert.pem()),
        key: write("server.key", server_key.serialize_pem()),
        client_ca: Some(write("ca.pem", pki.ca.pem())),
        min_version: tsunagu_tls::TlsVersion::Tls13,
    };
    let acceptor = tsunagu_tls::TlsAcceptor::from_settings(&settings).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("https://localhost:{port}");
    let store = tsunagu_store_postgres::test_backend::fresh_store(&dir.path().join("data"));
    let fhir = Arc::new(tsunagu_interaction::Interactions::new(
        store,
        Arc::new(tsunagu_server::StructureCheck::default()),
        Default::default(),
    ));
    let authority =
        Arc::new(tsunagu_auth::Authority::open(&dir.path().join("auth"), &base, Default::default()).unwrap());
    let client = tsunagu_auth::Client {
        id: "lab-system".into(),
        scope: "system/Patient.rs".into(),
        tls_thumbprint: Some(tsunagu_tls::certificate_thumbprint(client_cert.der())),
        ..Default::default()
    };
    authority.registry().add_client(&client, 0).unwrap();
    let mut config = tsunagu_server::ServerConfig::new(base.clone());
    config.authorization = tsunagu_server::Authorization::Required(authority);
    let limits = config.limits.clone();
    let app = tsunagu_server::router(fhir, config);
    tokio::spawn(async move { tsunagu_server::serve_tls(listener, app, &limits, Some(acceptor)).await });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca.der().to_vec())).unwrap();
    let head = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let meta = https(port, &roots, None, &head("/metadata")).await;
    assert!(meta.starts_with("HTTP/1.1 200"), "{meta}");
    assert!(meta.contains("SMART-on-FHIR"));

    let form = "grant_type=client_credentials&client_id=lab-system&scope=system%2FPatient.rs";
    let token_request = format!(
        "POST /auth/token HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    // Without its certificate the client proves nothing.
    let refused = https(port, &roots, None, &token_request).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let answer = https(port, &roots, Some((&client_cert, &client_key)), &token_request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    let token = token["access_token"].as_str().unwrap();
    let search = format!(
        "GET /Patient HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let found = https(port, &roots, None, &search).await;
    assert!(found.starts_with("HTTP/1.1 200"), "{found}");

    // Plain HTTP on the TLS port: no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(head("/metadata").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(!String::from_utf8_lossy(&out).contains("HTTP/1.1 200"));
}
