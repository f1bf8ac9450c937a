//! `isolab testhost build|path|run`: the emulated hardware-KVM host.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::args::{TesthostAction, TesthostImageArgs};

/// Where the test host's boot files are cached.
fn cache() -> PathBuf {
    isolation::kernel::cache_root().join("testhost")
}

fn prepare(a: &TesthostImageArgs) -> anyhow::Result<testhost::Image> {
    Ok(testhost::image::prepare(&cache(), a.kernel_deb.as_deref())?)
}

/// Runs the subcommand.
pub fn run(action: TesthostAction) -> anyhow::Result<i32> {
    match action {
        TesthostAction::Build(a) => {
            let image = prepare(&a)?;
            println!("{} ({})", image.dir.display(), image.package);
            Ok(0)
        }
        TesthostAction::Path(a) => {
            let image = prepare(&a)?;
            println!("{}", image.dir.display());
            Ok(0)
        }
        TesthostAction::Run(a) => {
            let image = prepare(&a.image)?;
            let cwd = std::env::current_dir()?;
            let interactive = a.command.is_empty();
            if interactive && !std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "no command given and stdin is not a terminal: name a command after --"
                );
            }
            let command = if interactive {
                vec!["/bin/sh".to_string(), "-l".to_string()]
            } else {
                a.command
            };
            let spec = testhost::RunSpec {
                command,
                env: a.env,
                share: a.share.unwrap_or_else(|| cwd.clone()),
                cwd,
                memory_mib: a.memory >> 20,
                cpus: a.cpus,
                timeout: a.timeout,
                interactive,
            };
            Ok(testhost::run::run(&image, &spec)?)
        }
    }
}
