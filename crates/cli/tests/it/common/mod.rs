//! Helpers shared by the integration tests: starting the binary as a server on loopback
//! and a minimal HTTP/1.1 client (one request per connection, std only).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn start_server(data: &Path, addr: &str) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_tsunagu"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", addr])
            .env("RUST_LOG", "error")
            .env_remove("TSUNAGU_SYNC")
            // These tests are about FHIR behaviour and hostile input; access control has its own.
            .env("TSUNAGU_AUTH", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tsunagu"),
    )
}

/// The server process, killed when the test ends, even by a panic.
pub struct Server(pub Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_ready(addr: &str, server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok((200, _, _)) = http(addr, "GET", "/Patient?_count=1", None) {
            return;
        }
        if let Some(status) = server.try_wait().unwrap() {
            panic!("server exited during start: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("server did not start on {addr}");
}

/// A loopback port free now and never handed out before in this process. The tests of
/// this binary run at once: a port one test's server has not bound yet (or has released
/// after a kill) could otherwise go to another's, and `wait_ready` would take that
/// server's answer for its own.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner()).insert(port) {
            return port;
        }
    }
}

pub type Response = (u16, HashMap<String, String>, Vec<u8>);

/// A minimal HTTP/1.1 client over loopback (one request per connection).
pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> std::io::Result<Response> {
    http_with(addr, method, path, body, &[])
}

/// As [`http`], with extra request headers.
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/fhir+json\r\nAccept: application/fhir+json\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    read_response(s)
}

/// Reads a whole response from a connection the server closes after it.
pub fn read_response(s: TcpStream) -> std::io::Result<Response> {
    read_response_to(s, false)
}

/// [`read_response`]; `to_head`: the answer to a HEAD, whose Content-Length is GET's and
/// which has no body.
fn read_response_to(mut s: TcpStream, to_head: bool) -> std::io::Result<Response> {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("incomplete response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut payload = raw[split + 4..].to_vec();
    if to_head {
        payload.clear();
    } else if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        payload = dechunk(&payload)?;
    } else if let Some(len) = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if payload.len() < len {
            return Err(std::io::Error::other("truncated body"));
        }
        payload.truncate(len);
    }
    Ok((status, headers, payload))
}

fn dechunk(mut b: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or_else(|| std::io::Error::other("truncated chunk"))?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap_or("").trim(), 16)
            .map_err(|_| std::io::Error::other("bad chunk size"))?;
        if size == 0 {
            return Ok(out);
        }
        let start = eol + 2;
        if b.len() < start + size + 2 {
            return Err(std::io::Error::other("truncated chunk"));
        }
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
}

/// Starts the server with extra arguments before `serve` (e.g. `--config FILE`).
pub fn start_server_args(data: &Path, addr: &str, global: &[&std::ffi::OsStr]) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_tsunagu"))
            .arg("--data")
            .arg(data)
            .args(global)
            .args(["serve", "--listen", addr])
            .env("RUST_LOG", "error")
            .env_remove("TSUNAGU_SYNC")
            // These tests are about FHIR behaviour and hostile input; access control has its own.
            .env("TSUNAGU_AUTH", "off")
            .env_remove("TSUNAGU_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tsunagu"),
    )
}

/// One request with exactly the given headers (plus Host, Connection: close and
/// Content-Length) and body.
pub fn http_raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // A server may answer (413, 431) and close before taking the whole body; the answer
    // is what counts.
    let _ = s.write_all(body);
    read_response_to(s, method == "HEAD")
}

/// Peak resident memory of a process, in bytes (VmHWM).
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A small deterministic generator (xorshift), so a failing run can be repeated by seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
