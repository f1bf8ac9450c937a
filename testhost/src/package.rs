//! Debian's kernel package: which one, fetched with `apt-get download` (the
//! package archive is the only network source), unpacked with `dpkg-deb`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The metapackage that names the current kernel of the release.
pub const METAPACKAGE: &str = "linux-image-amd64";

/// A kernel package: its name and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPackage {
    /// e.g. `linux-image-6.1.0-56-amd64`.
    pub name: String,
    /// e.g. `6.1.192-2`.
    pub version: String,
    /// A local `.deb` to use instead of downloading.
    pub deb: Option<PathBuf>,
}

fn output(cmd: &mut Command, hint: &'static str) -> Result<String, Error> {
    let prog = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::ToolMissing {
            tool: if prog == "dpkg-deb" {
                "dpkg-deb"
            } else {
                "apt (apt-cache, apt-get)"
            },
            hint,
        },
        _ => Error::Package(format!("{prog}: {e}")),
    })?;
    if !out.status.success() {
        return Err(Error::Package(format!(
            "{prog} {}: {}",
            cmd.get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel package [`METAPACKAGE`] depends on, and its candidate version.
pub fn resolve() -> Result<KernelPackage, Error> {
    const HINT: &str = "run on Debian, or pass --kernel-deb with a Debian linux-image .deb";
    let deps = output(
        Command::new("apt-cache").args(["depends", METAPACKAGE]),
        HINT,
    )?;
    let name = parse_depends(&deps).ok_or_else(|| {
        Error::Package(format!(
            "{METAPACKAGE} names no linux-image package (is this Debian? `apt-get update` first?)"
        ))
    })?;
    let policy = output(Command::new("apt-cache").args(["policy", &name]), HINT)?;
    let version = parse_candidate(&policy).ok_or_else(|| {
        Error::Package(format!(
            "no installable version of {name}: `apt-get update` first"
        ))
    })?;
    Ok(KernelPackage {
        name,
        version,
        deb: None,
    })
}

/// A local `.deb`, described by its own control fields.
pub fn local(deb: &Path) -> Result<KernelPackage, Error> {
    const HINT: &str = "apt-get install dpkg";
    let fields = output(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .args(["Package", "Version"]),
        HINT,
    )?;
    let field = |k: &str| {
        fields
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(": ")))
            .map(|v| v.trim().to_string())
    };
    match (field("Package"), field("Version")) {
        (Some(name), Some(version)) if name.starts_with("linux-image-") => Ok(KernelPackage {
            name,
            version,
            deb: Some(deb.to_path_buf()),
        }),
        _ => Err(Error::Package(format!(
            "{} is not a Debian linux-image package",
            deb.display()
        ))),
    }
}

/// Unpacks the package into `dir` (downloading it into `dir` first unless
/// it is local). Returns the unpacked root.
pub fn unpack(pkg: &KernelPackage, dir: &Path) -> Result<PathBuf, Error> {
    let deb = match &pkg.deb {
        Some(d) => d.clone(),
        None => {
            let spec = format!("{}={}", pkg.name, pkg.version);
            output(
                Command::new("apt-get")
                    .args(["download", "-q", &spec])
                    .current_dir(dir),
                "apt-get install apt",
            )?;
            let found = std::fs::read_dir(dir)
                .map_err(Error::io(dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "deb"));
            found.ok_or_else(|| Error::Package(format!("apt-get download {spec} left no .deb")))?
        }
    };
    let root = dir.join("unpacked");
    output(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        "apt-get install dpkg",
    )?;
    Ok(root)
}

/// `Depends: linux-image-…` from `apt-cache depends`.
fn parse_depends(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(str::trim)
        .find(|d| d.starts_with("linux-image-"))
        .map(str::to_string)
}

/// `Candidate: …` from `apt-cache policy`.
fn parse_candidate(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Candidate: "))
        .map(str::trim)
        .find(|v| *v != "(none)")
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_cache_answers_are_read() {
        let deps = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            parse_depends(deps).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(parse_depends("x\n  Depends: other\n"), None);
        let policy = "linux-image-6.1.0-56-amd64:\n  Installed: (none)\n  Candidate: 6.1.192-2\n";
        assert_eq!(parse_candidate(policy).as_deref(), Some("6.1.192-2"));
        assert_eq!(parse_candidate("  Candidate: (none)\n"), None);
    }
}
