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
    /// Run the server (in the foreground; Ctrl-C stops it).
    // Boxed: its many flags dwarf the other subcommands'. (A `//` comment: clap shows `///` ones.)
    Serve(Box<serve::ServeArgs>),
    /// Load a Kinesis endpoint (kinesin or another) and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Manage streams on kinesin or AWS: create, list, describe, delete, split, merge, scale, retention.
    Stream(cli::stream::StreamArgs),
    /// Put records from arguments, stdin lines or files (batched PutRecords, failed records retried).
    Put(cli::put::PutArgs),
    /// Print a stream's records, every shard, parents before children; -f keeps following.
    Tail(cli::tail::TailArgs),
    /// Ask a running server whether it is ready (GET /health/ready): exit 0 if so, 1 if not.
    ///
    /// For container health checks and service managers: needs no curl.
    Health(cli::health::HealthArgs),
}

fn main() -> Result<()> {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::serve(*args),
        Command::Bench(args) => bench::bench(args),
        Command::Stream(args) => client(cli::stream::run(args)),
        Command::Put(args) => client(cli::put::run(args)),
        Command::Tail(args) => client(cli::tail::run(args)),
        Command::Health(args) => {
            if let Err(e) = cli::health::run(args) {
                cli::exit_with(format!("{e:#}"), 1);
            }
            Ok(())
        }
    }
}

/// `kinesin … | head`: once the reader of stdout is gone, a write fails with EPIPE (Rust ignores
/// SIGPIPE) and `println!` panics with "failed printing to stdout: Broken pipe". That is not an
/// error of the command: end quietly with status 0, as the CLI's own writers do
/// (`cli::stdout_write`). This hook covers the `println!`s of the other subcommands.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// Runs a client command; its errors print as `error: …` (with the AWS code and a hint) and exit 1.
fn client(command: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Err(e) = runtime.block_on(command) {
        if cli::is_broken_pipe(&e) {
            std::process::exit(0);
        }
        cli::exit_with(format!("{e:#}"), 1);
    }
    Ok(())
}
