//! `tsunagu bench …`: benchmarks of the hot paths against a running release build.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Which {
    /// GET /Patient/{id} with concurrent clients against a fresh server on loopback.
    Read {
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Patients to create first.
        #[arg(long, default_value_t = 1000)]
        patients: usize,
        /// Server nodes on the `--database` (PostgreSQL only), each with its own store.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
    },
    /// A mix of search queries (token, string, date range, reference,
    /// chained, _has, _include, _revinclude, _sort, _summary=count) against the data
    /// directory as it is; load it first with `tsunagu import`.
    Search {
        /// Runs of each query (each with a different sampled value).
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Then the shapes clients send beyond the mix (multi-key sorts, sorted windows,
        /// type-level $everything and history, `:missing`, quantity ranges, `_text` with
        /// `_sort`, `_total=accurate`), each the same query `runs` times.
        #[arg(long)]
        shapes: bool,
        /// Print each row's slowest query under it, to see what makes its p95.
        #[arg(long)]
        slowest: bool,
    },
    /// What access control costs: reads and searches with tokens against without (two
    /// routers over one store, alternating rounds), tokens issued per second through the
    /// token endpoint, and writes with their audit record against without.
    Auth {
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds per round and mode.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// JP-CLINS on synthetic data in a throwaway directory: synth patients/s, information
    /// Bundles and documents submitted per second (validated), `$summary` p50/p95.
    Clins {
        #[arg(long, default_value_t = 2000)]
        patients: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Threads making and validating submissions (default: the cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Submissions per write transaction while loading (1: one each, as over HTTP).
        #[arg(long, default_value_t = 64)]
        group: usize,
        /// Patients whose documents are loaded too (default: all).
        #[arg(long)]
        documents: Option<usize>,
        /// Further patients submitted one transaction per submission after the load.
        #[arg(long, default_value_t = 500)]
        sample: usize,
    },
    /// Backup and restore throughput of the data directory, and the size of an
    /// incremental backup after a share of the resources changed. Works on copies.
    Backup {
        /// Percentage of live resources to change before the incremental backup.
        #[arg(long, default_value_t = 1.0)]
        change_percent: f64,
    },
    /// Bulk `$export` in a throwaway directory: loads synthetic patients (1 Patient + 9
    /// Observations each) up to each size, then exports everything plain and de-identified,
    /// reporting resources/s and the export's peak RSS (VmHWM, reset before each run).
    Export {
        /// Resource counts to measure at, ascending (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "100000")]
        sizes: Vec<usize>,
    },
    /// Transaction Bundles POSTed over HTTP one after another by one client, into a fresh
    /// server with the configured `sync` (full unless set): resources/s, ms per Bundle. With
    /// `--database`, into that PostgreSQL database (use a scratch one: it is not emptied).
    Transactions {
        /// Transaction Bundles: a file, a directory or a .tar.zst archive (the Synthea sample).
        input: std::path::PathBuf,
        /// Bundles to post (the input is cycled when it has fewer).
        #[arg(long, default_value_t = 100)]
        bundles: usize,
        /// Organization and Practitioner entries become conditional creates (ifNoneExist on
        /// their identifier).
        #[arg(long)]
        conditional: bool,
    },
}

pub fn run(cfg: &crate::config::Config, which: Which) -> Result<(), String> {
    match which {
        Which::Read { clients, seconds, patients, nodes } => {
            crate::bench_read::run(cfg, clients, seconds, patients, nodes)
        }
        Which::Search { runs, shapes, slowest } => crate::bench_search::run(cfg, runs, shapes, slowest),
        Which::Auth { clients, seconds, rounds } => crate::bench_auth::run(clients, seconds, rounds.max(1)),
        Which::Clins { patients, seed, threads, group, documents, sample } => {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let threads = threads.unwrap_or(cores);
            let documents = documents.unwrap_or(patients);
            crate::bench_clins::run(cfg, crate::bench_clins::Plan { patients, seed, threads, group, documents, sample })
        }
        Which::Backup { change_percent } => crate::bench_backup::run(cfg, change_percent),
        Which::Export { sizes } => crate::bench_export::run(&sizes),
        Which::Transactions { input, bundles, conditional } => {
            crate::bench_tx::run(cfg, crate::bench_tx::Plan { input, bundles, conditional })
        }
    }
}
