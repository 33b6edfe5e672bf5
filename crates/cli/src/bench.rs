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
    },
}

pub fn run(_cfg: &crate::config::Config, which: Which) -> Result<(), String> {
    match which {
        Which::Read {
            clients,
            seconds,
            patients,
        } => crate::bench_read::run(clients, seconds, patients),
    }
}
