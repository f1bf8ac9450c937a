//! Builds the artifacts the isolations run: the static `isolab-workload` binary and,
//! when the checkout has it, the tiny guest image. Each is a nested
//! `cargo build --release` into its own target directory; their paths are
//! compiled into `isolation::artifacts`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let ws = manifest
        .parent()
        .expect("isolation/ lives in the workspace root")
        .to_path_buf();
    // Engineers and CI may each use their own target dir; keep the artifacts
    // with it so parallel builds never share (and lock) one directory.
    let target_root = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"));
    let target_root = if target_root.is_relative() {
        ws.join(target_root)
    } else {
        target_root
    };
    let out = target_root.join("isolab-artifacts");

    for p in ["workload/src", "workload/Cargo.toml", "Cargo.lock"] {
        rerun_if_changed(&ws.join(p));
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let workload = build(
        "the static workload",
        cargo()
            .arg("build")
            .arg("--release")
            .arg("--manifest-path")
            .arg(ws.join("workload/Cargo.toml"))
            .args(["--bin", "isolab-workload", "--target", TARGET])
            .arg("--target-dir")
            .arg(&out)
            .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static"),
        &out.join(TARGET).join("release/isolab-workload"),
        &out.join("isolab-workload"),
    );
    println!(
        "cargo:rustc-env=ISOLAB_WORKLOAD_BUILT={}",
        workload.display()
    );

    let tiny = ws.join("guest/tiny");
    // Always watch the manifest (its appearance turns the tiny build on); the
    // rest only when present, since a missing path makes cargo rerun this
    // script on every build.
    rerun_if_changed(&tiny.join("Cargo.toml"));
    for p in ["src", "build.rs", ".cargo"] {
        let path = tiny.join(p);
        if path.exists() {
            rerun_if_changed(&path);
        }
    }
    let tiny_image = if tiny.join("Cargo.toml").is_file() {
        for ld in linker_scripts(&tiny) {
            rerun_if_changed(&ld);
        }
        let image = build(
            "the tiny guest",
            cargo()
                .current_dir(&tiny)
                .args(["build", "--release", "--target", TARGET])
                .arg("--target-dir")
                .arg(out.join("tiny")),
            &out.join("tiny").join(TARGET).join("release/isolab-tiny"),
            &out.join("isolab-tiny.elf"),
        );
        image.display().to_string()
    } else {
        String::new()
    };
    println!("cargo:rustc-env=ISOLAB_TINY_GUEST_BUILT={tiny_image}");
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

fn linker_scripts(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "ld" || x == "x"))
                .collect()
        })
        .unwrap_or_default()
}

/// A `cargo` command with the outer build's environment removed: its flags,
/// target dir, wrappers and per-package variables would otherwise leak into
/// (and break) the nested build.
fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    const EXACT: &[&str] = &[
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "PROFILE",
        "OPT_LEVEL",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_PKG_NAME",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
        "DEP_",
        "CARGO_PROFILE_",
    ];
    for (key, _) in env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        if EXACT.contains(&k) || PREFIXES.iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Runs `cmd`, fails the outer build with its output if it fails, and copies
/// `built` to `dest` (via a rename, so a running copy is never overwritten in place).
fn build(what: &str, cmd: &mut Command, built: &Path, dest: &Path) -> PathBuf {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    if !output.status.success() {
        panic!(
            "building {what} failed ({}):\n{:?}\n{}",
            output.status,
            cmd,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tmp = dest.with_extension("tmp");
    std::fs::copy(built, &tmp)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", built.display(), tmp.display()));
    std::fs::rename(&tmp, dest)
        .unwrap_or_else(|e| panic!("cannot move {} to {}: {e}", tmp.display(), dest.display()));
    dest.to_path_buf()
}
