//! Where the workload binary and the tiny guest image are.
//!
//! `bench/build.rs` builds both and compiles their paths in; the environment
//! variables `ISOLAB_WORKLOAD` and `ISOLAB_TINY_GUEST` override them (e.g. for
//! an installed copy, or a guest built elsewhere).

use std::path::{Path, PathBuf};

/// Environment variable overriding [`workload_binary`].
pub const WORKLOAD_ENV: &str = "ISOLAB_WORKLOAD";
/// Environment variable overriding [`tiny_guest_image`].
pub const TINY_GUEST_ENV: &str = "ISOLAB_TINY_GUEST";

/// An artifact that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The path (built or from the environment) is not an existing file.
    #[error(
        "{what} not found at {path} ({origin}); rebuild with `cargo build -p bench` or set {env}"
    )]
    Missing {
        /// Which artifact.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// Where the path came from.
        origin: &'static str,
        /// The override variable.
        env: &'static str,
    },
    /// The build never produced it (e.g. `guest/tiny` is not in this checkout).
    #[error("{what} was not built: {reason}; set {env} to an image")]
    NotBuilt {
        /// Which artifact.
        what: &'static str,
        /// Why.
        reason: &'static str,
        /// The override variable.
        env: &'static str,
    },
}

/// The static `isolab-workload` binary.
pub fn workload_binary() -> Result<PathBuf, ArtifactError> {
    locate(
        "the workload binary",
        WORKLOAD_ENV,
        env!("ISOLAB_WORKLOAD_BUILT"),
        "not built",
    )
}

/// The tiny guest ELF image.
pub fn tiny_guest_image() -> Result<PathBuf, ArtifactError> {
    locate(
        "the tiny guest image",
        TINY_GUEST_ENV,
        env!("ISOLAB_TINY_GUEST_BUILT"),
        "guest/tiny/Cargo.toml did not exist when bench was built",
    )
}

fn locate(
    what: &'static str,
    env: &'static str,
    built: &'static str,
    not_built: &'static str,
) -> Result<PathBuf, ArtifactError> {
    let (path, origin) = match std::env::var_os(env).filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), "from the environment"),
        None if built.is_empty() => {
            return Err(ArtifactError::NotBuilt {
                what,
                reason: not_built,
                env,
            });
        }
        None => (PathBuf::from(built), "built by bench/build.rs"),
    };
    check(what, env, &path, origin)?;
    Ok(path)
}

fn check(
    what: &'static str,
    env: &'static str,
    path: &Path,
    origin: &'static str,
) -> Result<(), ArtifactError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ArtifactError::Missing {
            what,
            path: path.to_path_buf(),
            origin,
            env,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_workload_exists() {
        // Without an override this is the copy build.rs produced.
        if std::env::var_os(WORKLOAD_ENV).is_none() {
            let p = workload_binary().unwrap();
            assert!(p.ends_with("isolab-workload"), "{}", p.display());
        }
    }

    #[test]
    fn missing_file_names_path_and_variable() {
        let e = check("x", "VAR", Path::new("/nonexistent/isolab"), "o").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/isolab") && text.contains("VAR"),
            "{text}"
        );
    }

    #[test]
    fn unbuilt_artifact_says_why() {
        let e = locate("img", "ISOLAB_TEST_UNSET_VARIABLE", "", "no sources").unwrap_err();
        assert!(
            matches!(e, ArtifactError::NotBuilt { what: "img", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("no sources"));
    }
}
