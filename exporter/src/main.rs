//! Command line: parse arguments, set up logging, run a subcommand.
use std::process::ExitCode;

use bpf_inventory_exporter::{collect, render};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the inventory once and print it.
    Dump {
        #[arg(long, value_enum, default_value_t = DumpFormat::Table)]
        format: DumpFormat,
        /// Hold BPF_ENABLE_STATS while collecting (run statistics).
        #[arg(long, env = "BPF_EXPORTER_ENABLE_BPF_STATS")]
        enable_bpf_stats: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DumpFormat {
    Json,
    Table,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpf-inventory-exporter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dump {
            format,
            enable_bpf_stats,
        } => {
            let mut source = collect::Source::open(&collect::Options { enable_bpf_stats })?;
            let inventory = source.collect();
            match format {
                DumpFormat::Json => println!("{}", serde_json::to_string_pretty(&inventory)?),
                DumpFormat::Table => print!("{}", render::table::render_table(&inventory)),
            }
            Ok(())
        }
    }
}
