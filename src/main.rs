//! The `callcast` command line: serve | run | publish | demo.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "callcast",
    version,
    about = "Turns a live video call into a broadcast (RTMP and HLS)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP control API.
    Serve(callcast::server::ServeArgs),
    /// Run one broadcast from a job file in the foreground (containers, job schedulers).
    Run(callcast::run::RunArgs),
    /// Publish a synthetic participant (test video and tone) over WHIP.
    Publish(callcast::tools::publish::PublishArgs),
    /// Run a demo call with synthetic participants, composited to HLS (and RTMP if given).
    Demo(callcast::tools::demo::DemoArgs),
    /// Measure what a broadcast costs here (cores, memory, start time, frames), or soak it (--soak 30m).
    Bench(callcast::tools::bench::BenchArgs),
    /// Inspect the configuration (config file, CALLCAST_* variables, flags).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective settings and where each came from (secrets as ***); exit 2 if they are invalid.
    Check(callcast::server::ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads a terminal, never in log files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => callcast::server::run(args).await,
        Command::Publish(args) => callcast::tools::publish::run(args).await,
        Command::Demo(args) => callcast::tools::demo::run(args).await,
        Command::Config {
            command: ConfigCommand::Check(args),
        } => std::process::exit(callcast::config_check::run(&args)),
        Command::Bench(args) => tokio::task::spawn_blocking(move || callcast::tools::bench::run(args)).await?,
        Command::Run(args) => {
            let code = callcast::run::run(args).await?;
            std::process::exit(code)
        }
    }
}
