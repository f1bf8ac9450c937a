//! Namespaced sysctls (OCI `linux.sysctl`), written by the runtime while it
//! visits the container's network or IPC namespace: `/proc/sys/net` and the
//! IPC sysctls show the namespace of the task that opens them, so the host's
//! `/proc` is enough and nothing runs inside the container's root.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::{Error, Result};

/// The namespace (`net` or `ipc`) a validated sysctl name belongs to.
fn namespace_of(key: &str) -> &'static str {
    if key.starts_with("net.") {
        "net"
    } else {
        "ipc"
    }
}

fn open_ns(path: &str) -> Result<File> {
    File::open(path).map_err(|e| Error::host(format!("open {path}"), e))
}

fn setns(fd: &File, what: &str) -> Result<()> {
    // SAFETY: setns on an open namespace fd; no memory is passed.
    if unsafe { libc::setns(fd.as_raw_fd(), 0) } != 0 {
        return Err(Error::host(
            format!("enter {what}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Writes `sysctls` (already validated) in the namespaces of `pid`, then
/// returns this thread to its own namespaces.
pub(crate) fn write(pid: i32, sysctls: &[(String, String)]) -> Result<()> {
    for ns in ["net", "ipc"] {
        let mine: Vec<_> = sysctls
            .iter()
            .filter(|(k, _)| namespace_of(k) == ns)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let own = open_ns(&format!("/proc/thread-self/ns/{ns}"))?;
        let theirs = open_ns(&format!("/proc/{pid}/ns/{ns}"))?;
        setns(&theirs, "the container's namespace")?;
        let written = mine.iter().try_for_each(|(k, v)| {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).map_err(|e| Error::host(format!("sysctl {k}"), e))
        });
        // Back home before anything else, whatever the writes did.
        setns(&own, "the runtime's own namespace")?;
        written?;
    }
    Ok(())
}
