//! Renders per second for the JP-CLINS referral example: `cargo bench -p tsunagu-document`.
//! Reads the example from TSUNAGU_SHARED (default `../shared` beside the workspace); prints
//! SKIP when it is absent, and fails under `CI=true`.

use std::time::{Duration, Instant};

use tsunagu_document::{render_html, RenderOptions};

fn main() {
    let Some(path) = tsunagu_reference::find("jp/clins-examples/Bundle-Bundle-CLINS-Referral-Example-01.json") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bundle: serde_json::Value = serde_json::from_str(&text).unwrap();
    let options = RenderOptions::default();
    let size = render_html(&bundle, &options).unwrap().len();

    // Warm up, then run for at least ~2 s.
    for _ in 0..100 {
        std::hint::black_box(render_html(std::hint::black_box(&bundle), &options).unwrap());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            std::hint::black_box(render_html(std::hint::black_box(&bundle), &options).unwrap());
        }
        n += 100;
    }
    let elapsed = start.elapsed();
    let per = elapsed / n as u32;
    println!(
        "render_html (JP-CLINS referral, 18 entries, {size} bytes out): {:.0} renders/s, {:.1} µs each",
        n as f64 / elapsed.as_secs_f64(),
        per.as_secs_f64() * 1e6
    );
}
