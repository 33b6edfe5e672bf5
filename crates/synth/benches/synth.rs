//! Generation throughput: `cargo bench -p tsunagu-synth`. Prints patients per second for
//! `patient_bundles` on one thread and for `write_dir` (all cores, NDJSON to a temporary
//! directory). The target is at least 1,000 patients/s.

use std::time::Instant;

// As in the `tsunagu` binary, whose `synth` command this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use tsunagu_synth::{patient_bundles, write_dir, SynthOptions};

fn main() {
    let seed = 20240401;
    let patients = 5_000;

    let started = Instant::now();
    let mut bytes = 0usize;
    for index in 0..patients {
        for b in patient_bundles(seed, index) {
            bytes += serde_json::to_vec(&b.bundle).expect("serialises").len();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "patient_bundles + serialise, 1 thread: {patients} patients in {secs:.2} s = {:.0} patients/s ({:.1} MB)",
        patients as f64 / secs,
        bytes as f64 / 1e6
    );

    let dir = std::env::temp_dir().join(format!("tsunagu-synth-bench-{}", std::process::id()));
    let opts = SynthOptions { patients: 20_000, seed };
    let started = Instant::now();
    let stats = write_dir(&opts, &dir).expect("writes");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "write_dir, {} threads: {} patients in {secs:.2} s = {:.0} patients/s ({} resources, {:?})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        stats.patients,
        stats.patients as f64 / secs,
        stats.resources,
        stats.bundles_per_kind
    );
    let _ = std::fs::remove_dir_all(&dir);
}
