//! A small container runtime: namespaces, `pivot_root`, cgroups v1/v2,
//! capabilities, `no_new_privs` and seccomp, built on `nix`.

/// Errors of the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until the runtime lands.
    #[error("the container runtime is not built yet")]
    NotBuilt,
}
