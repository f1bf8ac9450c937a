//! Where a container runs: the dispatch point between isolab's container
//! runtime and (later) its micro VM, both behind one create step. Everything
//! after create (start, state, kill, delete) works on the init's pid, the
//! start gate and the recorded cgroups, whatever made them.

use std::path::PathBuf;

use container::ContainerSpec;

use crate::{Error, Result};

/// Which runtime the command line drives, chosen by [`crate::route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Namespaces and cgroups (`isolab`).
    Container,
    /// The micro VM (`isolab-vm`).
    Vm,
}

impl BackendKind {
    /// The implementation.
    pub fn backend(self) -> Box<dyn Backend> {
        match self {
            BackendKind::Container => Box::new(ContainerBackend),
            BackendKind::Vm => Box::new(VmBackend),
        }
    }
}

/// A created container whose init waits at the start gate.
pub trait Pending {
    /// Host pid of the init.
    fn pid(&self) -> i32;
    /// Its cgroup directories.
    fn cgroup_paths(&self) -> Vec<PathBuf>;
    /// Lets go: the init outlives this process from now on.
    fn detach(self: Box<Self>) -> Result<()>;
}

/// A way to run an OCI container.
pub trait Backend {
    /// Name in the state record.
    fn name(&self) -> &'static str;
    /// Sets up `spec` (whose lifecycle carries the start gate) and returns
    /// once its init waits for start.
    fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Pending>>;
}

struct ContainerBackend;

struct PendingContainer(container::Running);

impl Pending for PendingContainer {
    fn pid(&self) -> i32 {
        self.0.pid()
    }
    fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.0.cgroup_paths()
    }
    fn detach(self: Box<Self>) -> Result<()> {
        self.0.detach()?;
        Ok(())
    }
}

impl Backend for ContainerBackend {
    fn name(&self) -> &'static str {
        "container"
    }
    fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Pending>> {
        Ok(Box::new(PendingContainer(container::spawn(spec)?)))
    }
}

struct VmBackend;

impl Backend for VmBackend {
    fn name(&self) -> &'static str {
        "vm"
    }
    fn create(&self, _spec: &ContainerSpec) -> Result<Box<dyn Pending>> {
        Err(Error::Unsupported {
            field: "isolab-vm".into(),
            reason: "VM runtime not built yet (use the `isolab` runtime for containers)".into(),
        })
    }
}
