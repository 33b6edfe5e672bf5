//! Hostile input against a live server (the real binary, default settings except shorter
//! timeouts so the test does not wait a minute): every request an attacker was seen to
//! use to crash, poison or exhaust the server. After each one the process must still be
//! alive, the answer must be the right 4xx (or a fast, correct success where the input
//! is legal), and each request must finish within a stated time. At the end the server
//! must still serve ordinary requests, and its peak memory (VmHWM from /proc) must have
//! stayed under a stated bound.

use crate::common;

use common::{free_port, http_raw, peak_rss, start_server_args, wait_ready, Response, Server};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest any single hostile request may take (the test build is not optimised fully;
/// the release build is several times faster).
const MAX_SECONDS: f64 = 10.0;
/// Peak memory of the server over the whole run.
const MAX_RSS: u64 = 384 * 1024 * 1024;

const CONFIG: &str = "[limits]\nheader_read_timeout_secs = 2\nbody_read_timeout_secs = 2\nidle_timeout_secs = 4\n\
                      max_concurrent_requests = 4\n";

struct Target {
    addr: String,
    server: Server,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Target {
    fn start(dir: &Path) -> Target {
        let data = dir.join("data");
        let config = dir.join("tsunagu.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut server = start_server_args(&data, &addr, &["--config".as_ref(), config.as_os_str()]);
        wait_ready(&addr, &mut server);
        Target { addr, server, data, config }
    }

    fn restart(&mut self) {
        let _ = self.server.0.kill();
        let _ = self.server.0.wait();
        self.addr = format!("127.0.0.1:{}", free_port());
        self.server = start_server_args(&self.data, &self.addr, &["--config".as_ref(), self.config.as_os_str()]);
        wait_ready(&self.addr, &mut self.server);
    }

    /// Sends a request, checks the process lives and the time bound holds.
    fn send(&mut self, what: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let start = Instant::now();
        let r = http_raw(&self.addr, method, path, headers, body).unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let secs = start.elapsed().as_secs_f64();
        self.alive(what);
        assert!(secs < MAX_SECONDS, "{what}: took {secs:.1} s");
        let rss = peak_rss(self.server.0.id()) as f64 / 1048576.0;
        eprintln!("{what}: {} in {:.2} s, {} bytes, peak memory so far {rss:.0} MiB", r.0, secs, r.2.len());
        r
    }

    fn get(&mut self, what: &str, path: &str) -> Response {
        self.send(what, "GET", path, &[], b"")
    }

    fn post_json(&mut self, what: &str, path: &str, body: &Value) -> Response {
        self.send(what, "POST", path, &[("Content-Type", "application/fhir+json")], body.to_string().as_bytes())
    }

    fn alive(&mut self, what: &str) {
        if let Some(status) = self.server.0.try_wait().unwrap() {
            panic!("{what}: the server died ({status})");
        }
    }
}

/// Asserts a 4xx OperationOutcome, optionally naming a limit in both languages.
fn refused(r: &Response, what: &str, status: u16, limit: Option<&str>) {
    assert_eq!(r.0, status, "{what}: {}", String::from_utf8_lossy(&r.2[..r.2.len().min(600)]));
    let oo: Value = serde_json::from_slice(&r.2).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    assert_eq!(oo["resourceType"], "OperationOutcome", "{what}");
    if let Some(limit) = limit {
        assert!(oo.to_string().contains(limit), "{what}: the outcome does not name {limit}: {oo}");
    }
}

fn body_json(r: &Response) -> Value {
    serde_json::from_slice(&r.2).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.2)))
}

fn nested_extension_xml(levels: usize) -> String {
    let mut inner = "<valueString value=\"x\"/>".to_string();
    for i in 0..levels {
        inner = format!("<extension url=\"http://example.org/e{i}\">{inner}</extension>");
    }
    format!("<Patient xmlns=\"http://hl7.org/fhir\">{inner}</Patient>")
}

fn nested_extension_json(levels: usize) -> Value {
    let mut v = json!({"url": "http://example.org/e", "valueString": "x"});
    for _ in 0..levels {
        v = json!({"url": "http://example.org/e", "extension": [v]});
    }
    json!({"resourceType": "Patient", "extension": [v]})
}

#[test]
fn hostile_requests_leave_the_server_alive_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Target::start(dir.path());

    // A patient that must survive everything below.
    let r = t.post_json("seed", "/Patient", &json!({"resourceType": "Patient", "name": [{"family": "山田"}]}));
    assert_eq!(r.0, 201);
    let seed_id = body_json(&r)["id"].as_str().unwrap().to_string();

    // Deep `_has` and chains: once a stack overflow that ended the process.
    let q = format!("/Patient?{}_id=x", "_has:Patient:link:".repeat(2000));
    refused(&t.get("_has ×2000", &q), "_has ×2000", 400, Some("max_has_depth"));
    let q = format!("/Patient?{}_id=x", "link:Patient.".repeat(3000));
    refused(&t.get("chain ×3000", &q), "chain ×3000", 400, Some("max_chain_depth"));
    let form = format!("{}_id=x", "_has:Patient:link:".repeat(2000));
    let r = t.send(
        "_has ×2000 in a form",
        "POST",
        "/Patient/_search",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    refused(&r, "_has form", 400, Some("max_has_depth"));
    // A chain fanning out to every type that has the parameter, at every level.
    let r = t.get(
        "derived-from ×5",
        "/ActivityDefinition?derived-from.derived-from.derived-from.derived-from.derived-from._id=x",
    );
    refused(&r, "derived-from ×5", 400, Some("max_chain_depth"));
    let r = t.get("derived-from ×4", "/ActivityDefinition?derived-from.derived-from.derived-from.derived-from._id=x");
    assert!(r.0 == 200 || r.0 == 400, "derived-from ×4: {}", r.0);
    if r.0 == 400 {
        refused(&r, "derived-from ×4", 400, Some("max_search_conditions"));
    }

    // Value sets importing each other 3,000 deep: legal to store, refused to expand.
    let entries: Vec<Value> = (0..3000)
        .map(|i| {
            json!({"resource": {"resourceType": "ValueSet", "url": format!("http://example.org/vs{i}"), "status": "active",
                   "compose": {"include": [{"valueSet": [format!("http://example.org/vs{}", i + 1)]}]}},
                   "request": {"method": "POST", "url": "ValueSet"}})
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    assert_eq!(t.post_json("3,000 chained ValueSets", "/", &bundle).0, 200);
    for round in 0..2 {
        let r = t.get("$expand of the chain", "/ValueSet/$expand?url=http://example.org/vs0");
        refused(&r, "$expand chain", 422, Some("max_value_set_import_depth"));
        let r = t.get(":in the chain", "/Observation?code:in=http://example.org/vs0");
        assert!((400..500).contains(&r.0), ":in chain: {}", r.0);
        refused(&r, ":in chain", r.0, Some("max_value_set_import_depth"));
        if round == 0 {
            t.restart();
        }
    }

    // Deep nesting: never stored, so reads, history and backups stay readable.
    for levels in [70, 90, 400] {
        let xml = nested_extension_xml(levels);
        let what = format!("XML extensions ×{levels}");
        let r = t.send(&what, "POST", "/Patient", &[("Content-Type", "application/fhir+xml")], xml.as_bytes());
        refused(&r, &what, 400, Some("max_json_depth"));
    }
    for levels in [55, 200] {
        let what = format!("JSON extensions ×{levels}");
        let r = t.post_json(&what, "/Patient", &nested_extension_json(levels));
        refused(&r, &what, 400, Some("max_json_depth"));
    }
    let deep_entry = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": nested_extension_json(55), "request": {"method": "POST", "url": "Patient"}}]});
    refused(&t.post_json("deep transaction entry", "/", &deep_entry), "deep entry", 400, Some("max_json_depth"));
    let patch = json!([{"op": "add", "path": "/extension", "value": nested_extension_json(55)["extension"]}]);
    let r = t.send(
        "deep JSON Patch result",
        "PATCH",
        &format!("/Patient/{seed_id}"),
        &[("Content-Type", "application/json-patch+json")],
        patch.to_string().as_bytes(),
    );
    assert!((400..500).contains(&r.0), "deep patch: {}", r.0);
    refused(&r, "deep patch", r.0, Some("max_json_depth"));
    // Characters XML cannot carry: never stored, so every read works in both formats.
    let r = t.post_json(
        "U+001B in a name",
        "/Patient",
        &json!({"resourceType": "Patient", "name": [{"family": "a\u{1b}b"}]}),
    );
    refused(&r, "U+001B in JSON", 400, Some("U+001B"));
    let xml = "<Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"a&#27;\"/></name></Patient>";
    let r = t.send("&#27; in XML", "POST", "/Patient", &[("Content-Type", "application/fhir+xml")], xml.as_bytes());
    refused(&r, "&#27; in XML", 400, Some("U+001B"));
    // A property named twice: one body must be one resource to every reader, so it is
    // refused (serde_json alone keeps the last), as a resource, in a Bundle, as a patch.
    let json_ct = [("Content-Type", "application/fhir+json")];
    // A byte order mark (RFC 8259 lets a reader ignore it; Windows tools write one).
    let bom = b"\xEF\xBB\xBF{\"resourceType\":\"Patient\",\"gender\":\"male\"}";
    assert_eq!(t.send("a byte order mark", "POST", "/Patient", &json_ct, bom).0, 201);
    // Content-Encoding: gzip is read, within max_body_bytes of what it inflates to (a bomb
    // of 64 MiB in 64 kB is a 413, not memory); other codings are a 415.
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let gz_ct = [("Content-Type", "application/fhir+json"), ("Content-Encoding", "gzip")];
    let plain = br#"{"resourceType":"Patient","gender":"male"}"#;
    assert_eq!(t.send("a gzip body", "POST", "/Patient", &gz_ct, &gz(plain)).0, 201);
    let mut inflating = br#"{"resourceType":"Patient","name":[{"family":""#.to_vec();
    inflating.resize(64 << 20, b'a');
    inflating.extend_from_slice(br#""}]}"#);
    let bomb = gz(&inflating);
    refused(&t.send("a gzip bomb", "POST", "/Patient", &gz_ct, &bomb), "a gzip bomb", 413, Some("max_body_bytes"));
    refused(&t.send("gzip that is not", "POST", "/Patient", &gz_ct, plain), "gzip that is not", 400, Some("gzip"));
    let br_ct = [("Content-Type", "application/fhir+json"), ("Content-Encoding", "br")];
    refused(&t.send("a br body", "POST", "/Patient", &br_ct, plain), "a br body", 415, Some("br"));
    let twice = br#"{"resourceType":"Patient","id":"a","gender":"male","gender":"female"}"#;
    refused(
        &t.send("gender twice", "POST", "/Patient", &json_ct, twice),
        "gender twice",
        400,
        Some("gender\\\" appears twice"),
    );
    let bundle =
        br#"{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Patient"},
        "resource":{"resourceType":"Patient","name":[{"family":"x","family":"y"}]}}]}"#;
    refused(
        &t.send("family twice in a Bundle", "POST", "/", &json_ct, bundle),
        "family twice",
        400,
        Some("appears twice"),
    );
    let patch = br#"[{"op":"replace","path":"/gender","value":"male","value":"female"}]"#;
    let r = t.send(
        "a patch naming value twice",
        "PATCH",
        &format!("/Patient/{seed_id}"),
        &[("Content-Type", "application/json-patch+json")],
        patch,
    );
    refused(&r, "a patch naming value twice", 400, Some("appears twice"));
    for path in ["/Patient", "/_history", "/Patient/_history", "/Patient?_format=xml", "/_history?_format=xml"] {
        assert_eq!(t.get(path, path).0, 200, "{path}");
    }

    // Millions of tiny values: refused before parsing (each would cost ~100 bytes).
    let body = format!("{{\"resourceType\":\"Patient\",\"name\":[{}1]}}", "1,".repeat(2 * 1024 * 1024));
    let r = t.send(
        "name: [1,1,…] 4 MiB",
        "POST",
        "/Patient",
        &[("Content-Type", "application/fhir+json")],
        body.as_bytes(),
    );
    refused(&r, "name [1,1,…] 4 MiB", 413, Some("max_body_values"));
    // Hundreds of thousands of wrong elements: one bounded OperationOutcome, quickly.
    let body = format!("{{\"resourceType\":\"Patient\",\"name\":[{}1]}}", "1,".repeat(300_000));
    let r = t.send(
        "name: [1,1,…] 600 kB",
        "POST",
        "/Patient",
        &[("Content-Type", "application/fhir+json")],
        body.as_bytes(),
    );
    refused(&r, "name [1,1,…]", 400, Some("max_issues"));
    assert!(r.2.len() < 256 * 1024, "the outcome has {} bytes", r.2.len());
    // The summary issue, at most max_issues found, and the one saying the list was cut.
    assert!(body_json(&r)["issue"].as_array().unwrap().len() <= 102);

    // 80,000 given names: legal, written in time linear in its size.
    let given: Vec<String> = (0..80_000).map(|i| format!("Given{i}")).collect();
    let r =
        t.post_json("80,000 given names", "/Patient", &json!({"resourceType": "Patient", "name": [{"given": given}]}));
    assert_eq!(r.0, 201);

    // FHIRPath Patch with large regular expressions: refused or run, never hoarded.
    for i in 0..40 {
        // Distinct patterns, every other one too large to compile within max_regex_bytes.
        let pattern = if i % 2 == 0 {
            format!("^(a{{1,{}}}|{}x)+$", 200 + i, "[a-z]{1,100}".repeat(40))
        } else {
            format!("^(\\\\w{{1,{}}})+$", 600 + i)
        };
        let params = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "delete"},
            {"name": "path", "valueString": format!("Patient.name.where(family.matches('{pattern}'))")}]}]});
        let r = t.send(
            "FHIRPath Patch with a large regex",
            "PATCH",
            &format!("/Patient/{seed_id}"),
            &[("Content-Type", "application/fhir+json")],
            params.to_string().as_bytes(),
        );
        if i % 2 == 0 {
            assert!(r.0 == 200 || (400..500).contains(&r.0), "regex patch {i}: {}", r.0);
        } else {
            assert!((400..500).contains(&r.0), "regex patch {i}: {}", r.0);
            refused(&r, "oversized regex", r.0, Some("max_regex_bytes"));
        }
    }

    // Narrative that would run in a browser.
    for div in [
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p onclick=\"steal()\">x</p></div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"javascript:steal()\">x</a></div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><iframe src=\"https://evil.example\"></iframe></div>",
    ] {
        let r = t.post_json(
            "unsafe narrative",
            "/Patient",
            &json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}}),
        );
        refused(&r, div, 400, None);
        assert!(body_json(&r).to_string().contains("text.div"), "{div}: the location is not named");
    }

    // Paging and value counts past their limits.
    refused(
        &t.get("huge _offset", "/Patient?_offset=18446744073709551615&_sort=_id"),
        "_offset",
        400,
        Some("max_search_offset"),
    );
    let ids: Vec<String> = (0..40_000).map(|i| format!("id{i}")).collect();
    let form = format!("_id={}", ids.join(","));
    let r = t.send(
        "40,000 _id values",
        "POST",
        "/Patient/_search",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    refused(&r, "40,000 _id", 400, Some("max_values_per_parameter"));
    // Heads the HTTP layer refuses before the application sees them still get an
    // OperationOutcome (in both languages at once: nothing has read Accept-Language).
    let r = t.get("40,000 _id values in the URL", &format!("/Patient?{form}"));
    refused(&r, "a head past max_header_bytes", 431, Some("max_header_bytes = 262144"));
    let r = t.get("a 70,000-byte URI", &format!("/Patient?name={}", "a".repeat(70_000)));
    refused(&r, "a 70,000-byte URI", 414, Some("POST [base]/[type]/_search"));
    let many: Vec<(String, String)> = (0..150).map(|i| (format!("X-F{i}"), "1".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = t.send("150 header fields", "GET", "/Patient", &many, b"");
    refused(&r, "150 header fields", 431, Some("max_header_fields = 100"));
    assert_eq!(r.1.get("x-content-type-options").map(String::as_str), Some("nosniff"));
    let mut garbage = TcpStream::connect(&t.addr).unwrap();
    garbage.write_all(b"GET /Patient HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n").unwrap();
    let r = common::read_response(garbage).unwrap();
    refused(&r, "a malformed header", 400, Some("HTTP"));
    t.alive("malformed heads");
    let mut ids: Vec<String> = (0..999).map(|i| format!("id{i}")).collect();
    ids.push(seed_id.clone());
    let r = t.get("1,000 _id values", &format!("/Patient?_id={}", ids.join(",")));
    assert_eq!(r.0, 200);
    assert_eq!(body_json(&r)["entry"].as_array().map(Vec::len), Some(1), "exactly the seed patient matches");

    // Writes that a web page could send cross-site without a preflight.
    let delete_all = json!({"resourceType": "Bundle", "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": format!("Patient?_id={seed_id}")}}]});
    let raw = delete_all.to_string();
    for ct in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data; boundary=x")]
    {
        let headers: Vec<(&str, &str)> = ct.map(|c| vec![("Content-Type", c)]).unwrap_or_default();
        let r = t.send("transaction without a FHIR content type", "POST", "/", &headers, raw.as_bytes());
        refused(&r, &format!("POST / as {ct:?}"), 415, None);
    }
    assert_eq!(t.get("seed still there", &format!("/Patient/{seed_id}")).0, 200);

    // `.` and `..` as ids.
    for id in [".", ".."] {
        let body = json!({"resourceType": "Patient", "id": id});
        let r = t.send(
            "dot id",
            "PUT",
            &format!("/Patient/%2E{}", if id == ".." { "%2E" } else { "" }),
            &[("Content-Type", "application/fhir+json")],
            body.to_string().as_bytes(),
        );
        assert!((400..500).contains(&r.0), "PUT id {id}: {}", r.0);
    }

    // A Host this server does not serve (DNS rebinding).
    let r = t.send("foreign Host", "GET", "/Patient", &[("Host", "evil.example:8080")], b"");
    refused(&r, "foreign Host", 421, None);
    // HEAD answers like GET, without a body; headers say what a browser may do.
    let r = t.send("HEAD", "HEAD", &format!("/Patient/{seed_id}"), &[], b"");
    assert_eq!(r.0, 200);
    assert!(r.2.is_empty());
    let r = t.get("headers", "/Patient");
    for (h, v) in
        [("x-content-type-options", "nosniff"), ("cache-control", "no-store"), ("referrer-policy", "no-referrer")]
    {
        assert_eq!(r.1.get(h).map(String::as_str), Some(v), "{h}");
    }
    assert!(r.1.get("content-security-policy").is_some_and(|v| v.contains("default-src 'none'")));
    let r = t.send(
        "CORS preflight",
        "OPTIONS",
        "/Patient",
        &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "DELETE")],
        b"",
    );
    assert!(!r.1.contains_key("access-control-allow-origin"), "CORS must be off by default");

    // Connections that stall: a half-sent head is closed; slow bodies hold a request slot
    // until their timeout, and the slots beyond the limit answer 503 at once.
    let start = Instant::now();
    let mut half = TcpStream::connect(&t.addr).unwrap();
    half.write_all(b"GET /Patient HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").unwrap();
    half.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let _ = half.read_to_end(&mut buf);
    let held = start.elapsed().as_secs_f64();
    assert!(held < 8.0, "a half-sent head was held {held:.1} s");
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(&t.addr).unwrap();
            s.write_all(b"POST /Patient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let r = t.get("past max_concurrent_requests", "/Patient");
    assert_eq!(r.0, 503, "{}", String::from_utf8_lossy(&r.2));
    assert!(r.1.contains_key("retry-after"));
    for s in slow {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = common::read_response(s).expect("the slow body gets an answer");
        assert_eq!(r.0, 408, "a body that never arrives");
    }
    assert_eq!(t.get("slots free again", "/Patient").0, 200);

    // Still a working server.
    let r =
        t.post_json("ordinary create", "/Patient", &json!({"resourceType": "Patient", "name": [{"family": "佐藤"}]}));
    assert_eq!(r.0, 201);
    assert_eq!(t.get("ordinary search", "/Patient?name=佐藤").0, 200);
    let rss = peak_rss(t.server.0.id());
    eprintln!("hostile: peak server memory {:.0} MiB", rss as f64 / 1048576.0);
    assert!(rss > 0 && rss < MAX_RSS, "peak memory {rss} bytes");
}
