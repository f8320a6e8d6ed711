//! `kinesin`: a self-hosted Amazon Kinesis Data Streams server.
//!
//! One module per subcommand; `main` only dispatches.

mod bench;
mod cli;
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
    /// Manage streams on kinesin or AWS: create, list, describe, delete, split, merge, scale, retention.
    Stream(cli::stream::StreamArgs),
    /// Put records from arguments, stdin lines or files (batched PutRecords, failed records retried).
    Put(cli::put::PutArgs),
    /// Print a stream's records, every shard, parents before children; -f keeps following.
    Tail(cli::tail::TailArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::serve(*args),
        Command::Bench(args) => bench::bench(args),
        Command::Stream(args) => client(cli::stream::run(args)),
        Command::Put(args) => client(cli::put::run(args)),
        Command::Tail(args) => client(cli::tail::run(args)),
    }
}

/// Runs a client command; its errors print as `error: …` (with the AWS code and a hint) and exit 1.
fn client(command: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Err(e) = runtime.block_on(command) {
        cli::exit_with(format!("{e:#}"), 1);
    }
    Ok(())
}
