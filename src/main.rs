//! `isolab`: the command-line front end. It parses arguments, calls `bench`,
//! and prints; all the work lives in the library crates.

mod args;
mod commands;

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = args::Cli::parse();
    let code = match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isolab: error: {e:#}");
            e.downcast_ref::<commands::Unsupported>().map_or(1, |_| 2)
        }
    };
    std::process::exit(code);
}
