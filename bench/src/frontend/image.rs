//! The demo image's build context: `FROM scratch`, busybox-static with the
//! applets the front-end tests use, and isolab's static workload.

use std::path::Path;

use super::FrontendError;

/// The busybox applets linked in the image's `/bin`.
pub const DEMO_APPLETS: [&str; 12] = [
    "sh", "echo", "true", "false", "id", "cat", "sleep", "env", "pwd", "ls", "head", "tty",
];

/// Writes a build context into `dir`: `Containerfile` and `rootfs/` with
/// `/bin/busybox` (from `busybox`), its applets, `/bin/isolab-workload`
/// (from `program`, a static binary), `/etc/passwd`, `/etc/group` and `/tmp`.
pub fn write_demo_context(dir: &Path, busybox: &Path, program: &Path) -> Result<(), FrontendError> {
    let prep = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| FrontendError::Prepare { what, path, source }
    };
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "tmp"] {
        let p = rootfs.join(d);
        std::fs::create_dir_all(&p).map_err(prep("the image's root filesystem", &p))?;
    }
    let bb = rootfs.join("bin/busybox");
    std::fs::copy(busybox, &bb).map_err(prep("busybox in the image", &bb))?;
    for applet in DEMO_APPLETS {
        let link = rootfs.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link).map_err(prep("an applet link", &link))?;
    }
    let wl = rootfs.join("bin/isolab-workload");
    std::fs::copy(program, &wl).map_err(prep("the static program in the image", &wl))?;
    // Numeric users need no entry, but `id` prints names when there are.
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000:lab:/tmp:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\nlab:x:1000:\n"),
    ];
    for (name, text) in files {
        let p = rootfs.join(name);
        std::fs::write(&p, text).map_err(prep("a file in the image", &p))?;
    }
    let containerfile = dir.join("Containerfile");
    std::fs::write(
        &containerfile,
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nCMD [\"/bin/sh\"]\n",
    )
    .map_err(prep("the Containerfile", &containerfile))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn context_has_busybox_applets_program_and_containerfile() {
        let dir = tempfile::tempdir().unwrap();
        let src = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(src.path(), b"bin").unwrap();
        write_demo_context(dir.path(), src.path(), src.path()).unwrap();
        let root = dir.path().join("rootfs");
        assert_eq!(std::fs::read(root.join("bin/busybox")).unwrap(), b"bin");
        assert_eq!(
            std::fs::read_link(root.join("bin/id")).unwrap(),
            Path::new("busybox")
        );
        assert!(root.join("bin/isolab-workload").is_file() && root.join("tmp").is_dir());
        let cf = std::fs::read_to_string(dir.path().join("Containerfile")).unwrap();
        assert!(cf.starts_with("FROM scratch\n"), "{cf}");
        // A second write into the same directory is refused, not merged.
        assert!(write_demo_context(dir.path(), src.path(), src.path()).is_err());
    }
}
