//! The state store under `--root`: one directory per container holding
//! `state.json` (written atomically) and, until started, the start gate
//! socket `start.sock`. The status is never stored: it is derived from the
//! init's pid, guarded against pid reuse by the start time recorded with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::ContainerState;
use serde::{Deserialize, Serialize};

use crate::procfs;
use crate::{Error, Result};

/// Default `--root`.
pub const DEFAULT_ROOT: &str = "/run/isolab";
/// The record inside a container's directory.
const STATE: &str = "state.json";
/// Written first by `create`: its pid and start time, until the record exists.
const CREATING: &str = "creating";
/// The bundle's config as `create` read it, for `exec`.
const CONFIG: &str = "config.json";
/// The start gate's socket, relative to the container's directory.
pub(crate) const GATE: &str = "start.sock";

/// What `create` recorded about a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The container id.
    pub id: String,
    /// Host pid of its init.
    pub pid: i32,
    /// The init's start time (`/proc/PID/stat` field 22), against pid reuse.
    pub pid_start: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// When it was created (RFC 3339).
    pub created: String,
    /// Its cgroup directories, removed by `delete`.
    pub cgroup_paths: Vec<PathBuf>,
    /// `annotations` of its config.
    pub annotations: HashMap<String, String>,
    /// The backend that made it (`container`).
    pub backend: String,
    /// The process that ran `create` asked by (its parent: conmon, a shim, a
    /// shell) and that process's start time: `isolab clean` removes created or
    /// stopped containers whose owner is gone.
    pub owner: (i32, u64),
}

/// The store at one `--root`.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// A container directory being created; removed on drop unless committed.
pub(crate) struct Reservation {
    dir: PathBuf,
    committed: bool,
}

impl Reservation {
    /// The container's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
    /// Keeps the directory: the record is written.
    pub(crate) fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Checks an id as runc does: `[A-Za-z0-9_+.-]+`, not `.` or `..`.
pub(crate) fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.into()))
    }
}

/// Writes `bytes` to `path` atomically (a temp file in the same directory, renamed).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("write {}", path.display()), e)
        })
}

/// This process's identity as an owner: (pid, start time).
pub(crate) fn identity(pid: i32) -> (i32, u64) {
    (pid, procfs::stat(pid).map_or(0, |(s, _)| s))
}

impl Store {
    /// The store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Claims `id`: fails if a container (or a create) already has it.
    pub(crate) fn reserve(&self, id: &str) -> Result<Reservation> {
        check_id(id)?;
        std::fs::create_dir_all(&self.root)
            .map_err(|e| Error::io(format!("create {}", self.root.display()), e))?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.into()));
            }
            Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
        }
        let reservation = Reservation {
            dir,
            committed: false,
        };
        let me = identity(std::process::id() as i32);
        write_atomic(
            &reservation.dir.join(CREATING),
            format!("{} {}", me.0, me.1).as_bytes(),
        )?;
        Ok(reservation)
    }

    /// Writes the record (atomically) and drops the creating marker.
    pub(crate) fn save(&self, rec: &Record) -> Result<()> {
        let dir = self.dir(&rec.id);
        let text = serde_json::to_vec_pretty(rec).map_err(|e| Error::Usage(e.to_string()))?;
        write_atomic(&dir.join(STATE), &text)?;
        let _ = std::fs::remove_file(dir.join(CREATING));
        Ok(())
    }

    /// Keeps the config `create` read (`exec` starts from it, whatever
    /// happens to the bundle later).
    pub(crate) fn save_config(&self, id: &str, config: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_vec(config).map_err(|e| Error::Usage(e.to_string()))?;
        write_atomic(&self.dir(id).join(CONFIG), &text)
    }

    /// The config saved by [`Store::save_config`].
    pub(crate) fn config(&self, id: &str) -> Result<serde_json::Value> {
        let path = self.dir(id).join(CONFIG);
        let text =
            std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        serde_json::from_slice(&text).map_err(|e| {
            Error::io(
                format!("parse {}", path.display()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// The record of `id`.
    pub fn load(&self, id: &str) -> Result<Record> {
        check_id(id)?;
        let path = self.dir(id).join(STATE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()));
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&text).map_err(|e| {
            Error::io(
                format!("parse {}", path.display()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// The status of a recorded container, from its init.
    pub fn status(&self, rec: &Record) -> ContainerState {
        if !procfs::alive(rec.pid, rec.pid_start) {
            ContainerState::Stopped
        } else if self.dir(&rec.id).join(GATE).exists() {
            ContainerState::Created
        } else {
            ContainerState::Running
        }
    }

    /// For a directory without a record: the pid of the `create` making it,
    /// if that process is still alive.
    pub(crate) fn creator_alive(&self, id: &str) -> bool {
        let text = std::fs::read_to_string(self.dir(id).join(CREATING)).unwrap_or_default();
        let mut it = text
            .split_whitespace()
            .filter_map(|t| t.parse::<u64>().ok());
        match (it.next(), it.next()) {
            (Some(pid), Some(start)) => procfs::alive(pid as i32, start),
            _ => false,
        }
    }

    /// Ids of every directory in the store.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    }

    /// True when the directory of `id` holds a record.
    pub(crate) fn has_record(&self, id: &str) -> bool {
        self.dir(id).join(STATE).exists()
    }

    /// Removes the directory of `id`.
    pub(crate) fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", dir.display()), e)),
        }
    }
}

/// `isolab clean`'s share: in the default root, removes half-made containers
/// whose `create` died, and created or stopped containers whose owner is gone
/// (running ones are never touched). Returns one line per container.
pub fn clean_default_root() -> Vec<String> {
    let store = Store::new(DEFAULT_ROOT);
    let mut log = Vec::new();
    for id in store.ids() {
        let gone = if store.has_record(&id) {
            store.load(&id).is_ok_and(|rec| {
                let status = store.status(&rec);
                status != ContainerState::Running && !procfs::alive(rec.owner.0, rec.owner.1)
            })
        } else {
            !store.creator_alive(&id)
        };
        if gone {
            log.push(match crate::lifecycle::remove(&store, &id) {
                Ok(()) => format!("removed OCI container {id} from {DEFAULT_ROOT}"),
                Err(e) => format!("could not remove OCI container {id}: {e}"),
            });
        }
    }
    log
}
