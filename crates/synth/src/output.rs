//! Writing a population as NDJSON, one file per [`BundleKind`], patients in index order
//! whatever the number of threads.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::{patient_bundles, BundleKind, SynthOptions};

/// What [`write_dir`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthStats {
    pub patients: usize,
    /// Bundles written per kind, in [`BundleKind::ALL`] order.
    pub bundles_per_kind: [(BundleKind, usize); 4],
    /// Resources in all Bundles (entries, not counting contained ones).
    pub resources: usize,
}

/// Patients generated per thread before their lines are written: large enough to keep
/// threads busy, small enough to bound memory.
const CHUNK: usize = 256;

/// Writes `DIR/<file_stem>.ndjson` for every kind (compact JSON, one Bundle per line,
/// patients in index order), creating `out` if needed. The same options give the same bytes.
pub fn write_dir(opts: &SynthOptions, out: &Path) -> std::io::Result<SynthStats> {
    std::fs::create_dir_all(out)?;
    let mut files = Vec::with_capacity(4);
    for kind in BundleKind::ALL {
        let file = File::create(out.join(format!("{}.ndjson", kind.file_stem())))?;
        files.push(BufWriter::with_capacity(1 << 20, file));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
    let mut stats =
        SynthStats { patients: opts.patients, bundles_per_kind: BundleKind::ALL.map(|k| (k, 0)), resources: 0 };
    let mut start = 0;
    while start < opts.patients {
        // One round: `threads` consecutive chunks, each rendered to per-kind byte buffers
        // on its own thread, then appended in chunk order.
        let round_end = (start + CHUNK * threads).min(opts.patients);
        let chunks: Vec<(usize, usize)> =
            (start..round_end).step_by(CHUNK).map(|s| (s, (s + CHUNK).min(round_end))).collect();
        let rendered: Vec<std::io::Result<Rendered>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks.iter().map(|&(s, e)| scope.spawn(move || render(opts.seed, s, e))).collect();
            handles.into_iter().map(|h| h.join().expect("generation thread")).collect()
        });
        for chunk in rendered {
            let chunk = chunk?;
            for (i, buffer) in chunk.lines.iter().enumerate() {
                files[i].write_all(buffer)?;
                stats.bundles_per_kind[i].1 += chunk.counts[i];
            }
            stats.resources += chunk.resources;
        }
        start = round_end;
    }
    for mut file in files {
        file.flush()?;
    }
    Ok(stats)
}

struct Rendered {
    lines: [Vec<u8>; 4],
    counts: [usize; 4],
    resources: usize,
}

fn render(seed: u64, start: usize, end: usize) -> std::io::Result<Rendered> {
    let mut rendered = Rendered { lines: Default::default(), counts: [0; 4], resources: 0 };
    for index in start..end {
        for b in patient_bundles(seed, index) {
            let slot = BundleKind::ALL.iter().position(|k| *k == b.kind).expect("a listed kind");
            rendered.resources += b.bundle["entry"].as_array().map_or(0, Vec::len);
            serde_json::to_writer(&mut rendered.lines[slot], &b.bundle)?;
            rendered.lines[slot].push(b'\n');
            rendered.counts[slot] += 1;
        }
    }
    Ok(rendered)
}
