//! `wasp`: the command line of the wasp worker pool.
//!
//! A thin `main`: parse, dispatch, print errors with their causes, map them
//! to exit codes (as ripgrep's `crates/core/main.rs` does).

mod build_task;
mod cli;
mod cluster;
mod inspect;
mod processes;
mod remote;
mod replay;
mod run;
mod scaffold;
mod serve;
mod settings;
mod taskdb;
mod toolchain;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = cli::Cli::parse();
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
    }
}
