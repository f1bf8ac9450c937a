//! `exec`: another process in a running container.

use std::path::PathBuf;

use clap::Args;
use oci_spec::runtime::ContainerState;
use serde_json::{Value, json};

use crate::lifecycle::{absolute, process_extras, write_pid_file, wrong_state};
use crate::state::Store;
use crate::{BackendKind, Error, Result};

/// `exec`'s arguments (runc's).
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The process as runtime spec JSON (instead of the flags below).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Write the process's pid here.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    /// Working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// Environment variables (KEY=VALUE).
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// UID\[:GID\].
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Add this capability to the process's sets (repeatable).
    #[arg(long = "cap", short = 'c')]
    caps: Vec<String>,
    /// Set no_new_privs.
    #[arg(long)]
    no_new_privs: bool,
    /// Extra descriptors to pass.
    #[arg(long, default_value_t = 0)]
    pub(crate) preserve_fds: u32,
    /// The container id.
    id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The process `exec` runs: `--process`, or the container's own process
/// with the flags applied (runc's rules: the command replaces `args`,
/// `--env` adds or replaces variables, `--cap` adds to every set).
fn process(a: &ExecArgs, config: &Value) -> Result<Value> {
    if let Some(path) = &a.process {
        let text =
            std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        return serde_json::from_slice(&text)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())));
    }
    if a.command.is_empty() {
        return Err(Error::Usage("exec needs a command (or --process)".into()));
    }
    let mut p = config.get("process").cloned().unwrap_or_else(|| json!({}));
    p["args"] = json!(a.command);
    p["terminal"] = json!(a.tty);
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p["env"] = json!(env);
    if let Some(cwd) = &a.cwd {
        p["cwd"] = json!(cwd);
    }
    if let Some(user) = &a.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::Usage(format!("--user {user}: expected UID[:GID]")))
        };
        p["user"] = json!({"uid": num(uid)?, "gid": num(gid)?});
    }
    for cap in &a.caps {
        let name = cap.to_ascii_uppercase();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let list = &mut p["capabilities"][set];
            match list.as_array_mut() {
                Some(v) if v.iter().any(|c| c == &json!(name)) => {}
                Some(v) => v.push(json!(name)),
                None => *list = json!([name]),
            }
        }
    }
    if a.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    Ok(p)
}

/// Runs `exec`: the process joins the running container; without
/// `--detach` its exit status is returned (128 + signal when killed).
pub(crate) fn exec(store: &Store, backend: BackendKind, a: &ExecArgs) -> Result<i32> {
    let rec = store.load(&a.id)?;
    let status = store.status(&rec);
    if status != ContainerState::Running {
        return Err(wrong_state(&rec, status, "exec needs a running container"));
    }
    if backend != BackendKind::Container || rec.backend != "container" {
        return Err(Error::Unsupported {
            field: "exec".into(),
            reason: format!("container {} runs on the {} backend", a.id, rec.backend),
        });
    }
    let pid_file = a.pid_file.as_deref().map(absolute).transpose()?;
    let mut config = store.config(&a.id)?;
    config["process"] = process(a, &config)?;
    let bundle = container::oci::runtime_bundle_from(&rec.bundle, config)?;
    let mut spec = bundle.spec;
    spec.stdin = container::Stdio::Inherit;
    spec.lifecycle.preserve_fds = a.preserve_fds;
    let _console = process_extras(&mut spec, &bundle.config, a.console_socket.as_deref())?;
    // Blocked from before the process exists, so none is lost or kills us.
    let blocked = (!a.detach).then(crate::forward::Blocked::new).transpose()?;
    let entered = container::enter(rec.pid, &rec.cgroup_paths, &spec)?;
    if let Some(p) = &pid_file {
        write_pid_file(p, entered.pid())?;
    }
    let Some(blocked) = blocked else {
        return Ok(0);
    };
    let status = blocked.wait(entered.pid())?;
    Ok(if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    })
}
