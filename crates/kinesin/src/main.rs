//! `kinesin`: a self-hosted Amazon Kinesis Data Streams server.
//!
//! One module per subcommand; `main` only dispatches.

mod bench;
mod serve;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// mimalloc: the request path allocates per record (decoded data, keys, response strings); glibc's
/// malloc was ~20% of the server's CPU under put-100b (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "kinesin", version, about = "A self-hosted Amazon Kinesis Data Streams server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. (Boxed: its many flags dwarf the other subcommands'.)
    Serve(Box<serve::ServeArgs>),
    /// Load a Kinesis endpoint (kinesin or another) and report throughput and latency.
    Bench(bench::BenchArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::serve(*args),
        Command::Bench(args) => bench::bench(args),
    }
}
