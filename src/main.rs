//! `isolab`: the command-line front end. It parses arguments, calls `bench`,
//! and prints; all the work lives in the library crates.

mod args;
mod commands;
mod progress;
mod style;

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    // Called as an OCI runtime (by podman, containerd, dockerd): see runtime::route.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(backend) = runtime::route(&argv) {
        std::process::exit(runtime::main(backend, argv));
    }
    let cli = args::Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(usage_error_code(&e));
    });
    let code = match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{} {}", style::error_prefix(), commands::error_text(&e));
            e.downcast_ref::<commands::Unsupported>().map_or(1, |_| 2)
        }
    };
    std::process::exit(code);
}

/// Help and version exit 0; a usage error exits 2, or 125 for `isolab run`,
/// whose own statuses follow podman's (125: isolab itself failed).
fn usage_error_code(e: &clap::Error) -> i32 {
    if !e.use_stderr() {
        return 0;
    }
    if std::env::args().nth(1).as_deref() == Some("run") {
        125
    } else {
        2
    }
}
