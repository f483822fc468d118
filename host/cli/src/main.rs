//! `wasp`: the command line of the wasp worker pool.
//!
//! A thin `main`: parse, dispatch, print errors with their causes, map them
//! to exit codes (as ripgrep's `crates/core/main.rs` does).

mod build_task;
mod cli;
mod cluster;
mod inspect;
mod launcher;
mod processes;
mod remote;
mod replay;
mod restart;
mod run;
mod scaffold;
mod serve;
mod settings;
mod supervise;
mod taskdb;
mod tenant;
mod toolchain;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // An engine's log file tells when it joined, lost and rejoined its
    // controller (info) and which modules failed to load (warn); other
    // commands print only errors unless RUST_LOG asks for more.
    let default = match args.command {
        cli::Command::Engine(_) => "warn,wasp_engine=info",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log file gets plain text, not terminal colours.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run_command(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("wasp: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_command(args: cli::Cli) -> anyhow::Result<ExitCode> {
    match args.command {
        cli::Command::Inspect(args) => inspect::inspect(&args),
        cli::Command::Run(args) => run::run(&args),
        cli::Command::New(args) => scaffold::new(&args),
        cli::Command::Build(args) => build_task::build(&args),
        cli::Command::Controller(args) => serve::controller(&args),
        cli::Command::Engine(args) => serve::engine(&args),
        cli::Command::Cluster(cli::ClusterCommand::Start(args)) => cluster::start(&args),
        cli::Command::Cluster(cli::ClusterCommand::Stop(args)) => cluster::stop(&args),
        cli::Command::Cluster(cli::ClusterCommand::Status(args)) => cluster::status(&args),
        cli::Command::Apply(args) => remote::apply(&args),
        cli::Command::Map(args) => remote::map(&args),
        cli::Command::Push(args) => remote::push(&args),
        cli::Command::Pull(args) => remote::pull(&args),
        cli::Command::Scatter(args) => remote::scatter(&args),
        cli::Command::Gather(args) => remote::gather(&args),
        cli::Command::Result(args) => taskdb::result(&args),
        cli::Command::Abort(args) => taskdb::abort(&args),
        cli::Command::Resubmit(args) => taskdb::resubmit(&args),
        cli::Command::Tasks(args) => taskdb::tasks(&args),
        cli::Command::Replay(args) => replay::replay(&args),
        cli::Command::Tenant(command) => tenant::tenant(&command),
    }
}
