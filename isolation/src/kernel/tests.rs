//! Cache, key and configuration checks; the real build is exercised by
//! `isolab kernel build` (CI) and the Linux boot tests that use its output.

use super::*;

fn fake_source(dir: &Path) -> PathBuf {
    let p = dir.join("linux-source-test.tar.xz");
    fs::write(&p, b"not really a tarball").unwrap();
    p
}

fn build_in(dir: &Path) -> KernelBuild {
    KernelBuild {
        source: fake_source(dir),
        fragment: CONFIG_FRAGMENT.into(),
        cache_root: dir.join("cache"),
        jobs: 1,
    }
}

fn fake_entry(b: &KernelBuild) -> PathBuf {
    let dir = b.entry_dir().unwrap();
    fs::create_dir_all(&dir).unwrap();
    for f in ["vmlinux", "bzImage", "config"] {
        fs::write(dir.join(f), f).unwrap();
    }
    dir
}

#[test]
fn committed_fragment_asks_for_what_the_guest_needs() {
    for opt in [
        "CONFIG_64BIT=y",
        "CONFIG_SERIAL_8250_CONSOLE=y",
        "CONFIG_PRINTK=y",
        "CONFIG_BLK_DEV_INITRD=y",
        "CONFIG_DEVTMPFS=y",
        "CONFIG_PROC_FS=y",
        "CONFIG_SYSFS=y",
        "CONFIG_VIRTIO_MMIO=y",
        "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y",
        "CONFIG_VIRTIO_BLK=y",
        "CONFIG_KVM_GUEST=y",
        "CONFIG_PARAVIRT_CLOCK=y",
        "CONFIG_SMP=y",
        "CONFIG_BINFMT_ELF=y",
        "CONFIG_X86_IOPL_IOPERM=y",
        "# CONFIG_MODULES is not set",
    ] {
        assert!(
            CONFIG_FRAGMENT.lines().any(|l| l.trim() == opt),
            "fragment lacks {opt}"
        );
    }
}

#[test]
fn dropped_options_names_what_olddefconfig_lost() {
    let fragment = "# comment\nCONFIG_A=y\nCONFIG_B=\"x\"\n# CONFIG_MODULES is not set\n";
    assert!(dropped_options(fragment, "CONFIG_A=y\nCONFIG_B=\"x\"\n").is_empty());
    assert_eq!(
        dropped_options(
            fragment,
            "# CONFIG_A is not set\nCONFIG_B=\"y\"\nCONFIG_MODULES=y\n"
        ),
        vec![
            "CONFIG_A=y",
            "CONFIG_B=\"x\"",
            "# CONFIG_MODULES is not set"
        ]
    );
    // A prefix of another option's name is not that option.
    assert!(
        dropped_options(
            "# CONFIG_MODULES is not set",
            "CONFIG_MODULES_TREE_LOOKUP=y"
        )
        .is_empty()
    );
}

#[test]
fn cache_key_follows_fragment_and_source_version() {
    let k = cache_key("CONFIG_A=y\n", "6.1.1");
    assert_eq!(k.len(), 16);
    assert!(k.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(k, cache_key("CONFIG_A=y\n", "6.1.1"));
    assert_ne!(k, cache_key("CONFIG_A=n\n", "6.1.1"));
    assert_ne!(k, cache_key("CONFIG_A=y\n", "6.1.2"));
}

#[test]
fn cache_root_prefers_xdg_then_home() {
    assert_eq!(
        cache_root_from(Some("/x".into()), Some("/h".into())),
        PathBuf::from("/x/isolab")
    );
    assert_eq!(
        cache_root_from(Some("".into()), Some("/h".into())),
        PathBuf::from("/h/.cache/isolab")
    );
    assert_eq!(
        cache_root_from(None, Some("/h".into())),
        PathBuf::from("/h/.cache/isolab")
    );
}

#[test]
fn missing_source_names_the_package_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = build_in(tmp.path());
    b.source = tmp.path().join("absent.tar.xz");
    let err = b.build(&crate::progress::Silent).unwrap_err();
    assert!(matches!(err, KernelError::SourceMissing { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("apt-get install linux-source-6.1 flex bison bc libelf-dev")
    );
    assert!(
        !b.cache_root.exists(),
        "a failed build left {}",
        b.cache_root.display()
    );
}

#[test]
fn a_cached_kernel_is_never_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let b = build_in(tmp.path());
    assert_eq!(b.cached().unwrap(), None);
    let dir = fake_entry(&b);
    // The fake source is not a tarball: any attempt to build would fail.
    let got = b.build(&crate::progress::Silent).unwrap();
    assert_eq!(got.dir, dir);
    assert_eq!(fs::read(&got.vmlinux).unwrap(), b"vmlinux");
    assert_eq!(b.cached().unwrap().unwrap().bzimage, dir.join("bzImage"));
}

#[test]
fn an_incomplete_entry_is_not_a_cached_kernel() {
    let tmp = tempfile::tempdir().unwrap();
    let b = build_in(tmp.path());
    let dir = fake_entry(&b);
    fs::remove_file(dir.join("bzImage")).unwrap();
    assert_eq!(b.cached().unwrap(), None);
}

#[test]
fn a_broken_tarball_fails_the_unpack_step_and_cleans_up() {
    if check_tools().is_err() {
        // The failure would be ToolsMissing instead; that path is the same cleanup.
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = build_in(tmp.path());
    match b.build(&crate::progress::Silent) {
        Err(KernelError::StepFailed { step, .. }) => assert!(step.starts_with("tar -xJf")),
        other => panic!("expected the tar step to fail, got {other:?}"),
    }
    let leftovers: Vec<_> = fs::read_dir(b.cache_root.join("kernel")).unwrap().collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn resolve_prefers_explicit_then_env_then_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let b = build_in(tmp.path());
    assert!(matches!(
        resolve_with(None, None, &b),
        Err(KernelError::NotBuilt)
    ));
    let dir = fake_entry(&b);
    assert_eq!(
        resolve_with(None, None, &b).unwrap(),
        (dir.join("vmlinux"), KernelSource::Cache)
    );

    let mine = tmp.path().join("my-bzImage");
    fs::write(&mine, b"k").unwrap();
    assert_eq!(
        resolve_with(None, Some(mine.clone()), &b).unwrap(),
        (mine.clone(), KernelSource::Environment)
    );
    assert_eq!(
        resolve_with(Some(&mine), Some("/elsewhere".into()), &b).unwrap(),
        (mine.clone(), KernelSource::Explicit)
    );
    match resolve_with(Some(Path::new("/no/such/vmlinux")), None, &b) {
        Err(KernelError::NamedKernelMissing { origin, .. }) => assert_eq!(origin, "--kernel"),
        other => panic!("expected NamedKernelMissing, got {other:?}"),
    }
}

#[test]
fn temporaries_of_dead_processes_are_swept_and_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    // No process has pid 0x7fff_fff0 (above pid_max).
    let dead = tmp.path().join(".build-2147483632-abc");
    let live = tmp.path().join(format!("{}abc", temp_prefix(".build-")));
    let other = tmp.path().join("0123456789abcdef");
    for d in [&dead, &live, &other] {
        fs::create_dir_all(d.join("linux-source-6.1")).unwrap();
    }
    sweep_stale_temps(tmp.path(), ".build-");
    assert!(!dead.exists(), "stale build directory kept");
    assert!(live.exists(), "a running build's directory was removed");
    assert!(other.exists(), "a cache entry was removed");
}
