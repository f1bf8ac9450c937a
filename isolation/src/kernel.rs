//! The guest kernel: building the project's minimal microVM kernel from
//! Debian's `linux-source-6.1` package, caching it, and finding the kernel a
//! run should boot.
//!
//! Recipe: unpack the source tarball, `make tinyconfig`, merge
//! `guest/linux/isolab.config` (`scripts/kconfig/merge_config.sh`),
//! `make olddefconfig`, check that every option of the fragment survived,
//! `make vmlinux bzImage`. Results go to
//! `$XDG_CACHE_HOME/isolab/kernel/<key>/{vmlinux,bzImage,config,build.json}`
//! where `<key>` hashes the fragment, the source version and the recipe
//! version. A valid cache entry is never rebuilt; entries appear atomically
//! (built in a temporary directory, then renamed).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::progress::Progress;

/// The committed kernel configuration fragment.
pub const CONFIG_FRAGMENT: &str = include_str!("../../guest/linux/isolab.config");
/// Debian's kernel source tarball.
pub const DEFAULT_SOURCE: &str = "/usr/src/linux-source-6.1.tar.xz";
/// Debian package providing [`DEFAULT_SOURCE`].
pub const SOURCE_PACKAGE: &str = "linux-source-6.1";
/// Environment variable naming a kernel to boot instead of the cached one.
pub const KERNEL_ENV: &str = "ISOLAB_KERNEL";
/// Bump when the build steps change in a way that changes the output.
const RECIPE_VERSION: &str = "1";
/// What to install when the toolchain or source is missing.
const INSTALL_HINT: &str = "apt-get install linux-source-6.1 flex bison bc libelf-dev";
/// About how many output lines a full build produces (measured on Linux
/// 6.1 with the committed fragment): the length for a determinate progress
/// bar, since [`KernelBuild::build`] advances the bar by one per line.
pub const APPROX_OUTPUT_LINES: u64 = 1300;
/// Lines of build output kept for error messages.
const TAIL_LINES: usize = 30;

/// Errors finding or building the guest kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The source tarball is not installed.
    #[error("kernel source {path} is missing: run `{hint}`")]
    SourceMissing {
        /// Where it was expected.
        path: PathBuf,
        /// The install command.
        hint: &'static str,
    },
    /// Build tools are missing.
    #[error("cannot build the guest kernel, missing: {missing}; run `{hint}`")]
    ToolsMissing {
        /// Comma-separated tool names.
        missing: String,
        /// The install command.
        hint: &'static str,
    },
    /// A build step failed.
    #[error("guest kernel build step `{step}` failed ({status}); last output:\n{tail}")]
    StepFailed {
        /// The command.
        step: String,
        /// Its exit status.
        status: String,
        /// The end of its output.
        tail: String,
    },
    /// `make olddefconfig` dropped or changed options of the fragment.
    #[error(
        "the kernel configuration lost options of guest/linux/isolab.config (unmet dependencies?): {}",
        options.join(", ")
    )]
    ConfigDropped {
        /// `CONFIG_…=…` lines of the fragment not found in the final `.config`.
        options: Vec<String>,
    },
    /// No kernel is built and none was named.
    #[error(
        "no guest kernel built: run `isolab kernel build` (or set {KERNEL_ENV} / pass --kernel)"
    )]
    NotBuilt,
    /// A kernel named explicitly does not exist.
    #[error("guest kernel {path} (from {origin}) does not exist")]
    NamedKernelMissing {
        /// The path.
        path: PathBuf,
        /// `--kernel` or the environment variable.
        origin: String,
    },
    /// File-system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> KernelError {
    let context = context.into();
    move |source| KernelError::Io { context, source }
}

/// The files of a built kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelArtifacts {
    /// The cache entry directory.
    pub dir: PathBuf,
    /// Uncompressed ELF kernel (what the VMM boots by default).
    pub vmlinux: PathBuf,
    /// Compressed kernel.
    pub bzimage: PathBuf,
    /// The final `.config`.
    pub config: PathBuf,
    /// Build facts, when recorded.
    pub info: Option<BuildInfo>,
}

/// Facts recorded next to a built kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The cache key.
    pub key: String,
    /// Source package version (or tarball identity).
    pub source_version: String,
    /// Wall time of the whole build.
    pub build_seconds: f64,
    /// Size of `vmlinux`.
    pub vmlinux_bytes: u64,
    /// Size of `bzImage`.
    pub bzimage_bytes: u64,
}

/// What to build and where to cache it.
#[derive(Debug, Clone)]
pub struct KernelBuild {
    /// The source tarball (`linux-source-6.1.tar.xz`).
    pub source: PathBuf,
    /// The configuration fragment merged onto tinyconfig.
    pub fragment: String,
    /// Cache root (`$XDG_CACHE_HOME/isolab`).
    pub cache_root: PathBuf,
    /// Parallel make jobs.
    pub jobs: usize,
}

impl Default for KernelBuild {
    /// The project's kernel: Debian's source, the committed fragment, the
    /// user's cache, one job per CPU.
    fn default() -> Self {
        KernelBuild {
            source: PathBuf::from(DEFAULT_SOURCE),
            fragment: CONFIG_FRAGMENT.to_string(),
            cache_root: cache_root(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// `$XDG_CACHE_HOME/isolab`, or `~/.cache/isolab`.
pub fn cache_root() -> PathBuf {
    cache_root_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

fn cache_root_from(xdg: Option<std::ffi::OsString>, home: Option<std::ffi::OsString>) -> PathBuf {
    match (xdg.filter(|x| !x.is_empty()), home) {
        (Some(x), _) => PathBuf::from(x).join("isolab"),
        (None, Some(h)) => PathBuf::from(h).join(".cache").join("isolab"),
        (None, None) => std::env::temp_dir().join("isolab-cache"),
    }
}

impl KernelBuild {
    /// The version of the kernel source: the Debian package version when the
    /// tarball is the package's, else the tarball's size and mtime.
    pub fn source_version(&self) -> Result<String, KernelError> {
        let meta = fs::metadata(&self.source).map_err(|_| KernelError::SourceMissing {
            path: self.source.clone(),
            hint: INSTALL_HINT,
        })?;
        if self.source == Path::new(DEFAULT_SOURCE)
            && let Ok(out) = Command::new("dpkg-query")
                .args(["-W", "-f", "${Version}", SOURCE_PACKAGE])
                .output()
            && out.status.success()
            && !out.stdout.is_empty()
        {
            return Ok(format!(
                "{SOURCE_PACKAGE} {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Ok(format!(
            "{} size {} mtime {mtime}",
            self.source.display(),
            meta.len()
        ))
    }

    /// The cache key: a hash of the fragment, the source version and the recipe.
    pub fn key(&self) -> Result<String, KernelError> {
        Ok(cache_key(&self.fragment, &self.source_version()?))
    }

    /// The cache entry directory for this build.
    pub fn entry_dir(&self) -> Result<PathBuf, KernelError> {
        Ok(self.cache_root.join("kernel").join(self.key()?))
    }

    /// The cached kernel, if a complete entry exists.
    pub fn cached(&self) -> Result<Option<KernelArtifacts>, KernelError> {
        Ok(read_entry(&self.entry_dir()?))
    }

    /// Builds the kernel unless it is cached; returns the cached files.
    /// `progress` shows the current step and make's latest line; it is only
    /// touched, never finished, so the caller decides how it ends.
    pub fn build(&self, progress: &dyn Progress) -> Result<KernelArtifacts, KernelError> {
        let entry = self.entry_dir()?;
        if let Some(done) = read_entry(&entry) {
            tracing::info!(dir = %entry.display(), "guest kernel cached");
            return Ok(done);
        }
        check_tools()?;
        let started = Instant::now();
        let kernel_dir = entry.parent().expect("entry has a parent");
        fs::create_dir_all(kernel_dir)
            .map_err(io_err(format!("creating {}", kernel_dir.display())))?;
        // Everything happens in a temporary directory next to the entry so the
        // final rename is atomic and an interrupted build leaves nothing.
        sweep_stale_temps(kernel_dir, BUILD_PREFIX);
        let work = tempfile::Builder::new()
            .prefix(&temp_prefix(BUILD_PREFIX))
            .tempdir_in(kernel_dir)
            .map_err(io_err(format!(
                "creating a build directory in {}",
                kernel_dir.display()
            )))?;
        let src = self.unpack(work.path(), progress)?;
        self.configure(&src, work.path(), progress)?;
        progress.message("make vmlinux bzImage");
        let jobs = format!("-j{}", self.jobs.max(1));
        run_step(&src, "make", &[&jobs, "vmlinux", "bzImage"], progress)?;

        let out = work.path().join("out");
        fs::create_dir(&out).map_err(io_err("creating the output directory"))?;
        for (from, to) in [
            ("vmlinux", "vmlinux"),
            ("arch/x86/boot/bzImage", "bzImage"),
            (".config", "config"),
        ] {
            fs::copy(src.join(from), out.join(to))
                .map_err(io_err(format!("copying {from} out of the kernel tree")))?;
        }
        let info = BuildInfo {
            key: self.key()?,
            source_version: self.source_version()?,
            build_seconds: started.elapsed().as_secs_f64(),
            vmlinux_bytes: file_len(&out.join("vmlinux")),
            bzimage_bytes: file_len(&out.join("bzImage")),
        };
        let json = serde_json::to_vec_pretty(&info).expect("BuildInfo serializes");
        fs::write(out.join("build.json"), json).map_err(io_err("writing build.json"))?;
        match fs::rename(&out, &entry) {
            Ok(()) => {}
            // Another build finished first: theirs is as good as ours.
            Err(_) if read_entry(&entry).is_some() => {}
            Err(e) => {
                return Err(io_err(format!("moving the kernel to {}", entry.display()))(
                    e,
                ));
            }
        }
        tracing::info!(seconds = info.build_seconds, dir = %entry.display(), "guest kernel built");
        read_entry(&entry).ok_or_else(|| KernelError::Io {
            context: format!("reading back {}", entry.display()),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }

    fn unpack(&self, work: &Path, progress: &dyn Progress) -> Result<PathBuf, KernelError> {
        if !self.source.is_file() {
            return Err(KernelError::SourceMissing {
                path: self.source.clone(),
                hint: INSTALL_HINT,
            });
        }
        progress.message(&format!("unpacking {}", self.source.display()));
        let tarball = self.source.to_string_lossy().into_owned();
        run_step(work, "tar", &["-xJf", &tarball], progress)?;
        // The tarball holds one top-level directory (linux-source-6.1/).
        let mut dirs = fs::read_dir(work)
            .map_err(io_err("listing the unpacked source"))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("Makefile").is_file());
        dirs.next().ok_or_else(|| KernelError::StepFailed {
            step: format!("tar -xJf {tarball}"),
            status: "no kernel tree inside".into(),
            tail: String::new(),
        })
    }

    fn configure(
        &self,
        src: &Path,
        work: &Path,
        progress: &dyn Progress,
    ) -> Result<(), KernelError> {
        progress.message("make tinyconfig");
        run_step(src, "make", &["tinyconfig"], progress)?;
        let fragment = work.join("isolab.config");
        fs::write(&fragment, &self.fragment).map_err(io_err("writing the config fragment"))?;
        progress.message("merging guest/linux/isolab.config");
        let frag = fragment.to_string_lossy().into_owned();
        run_step(
            src,
            "scripts/kconfig/merge_config.sh",
            &["-m", ".config", &frag],
            progress,
        )?;
        progress.message("make olddefconfig");
        run_step(src, "make", &["olddefconfig"], progress)?;
        let config = fs::read_to_string(src.join(".config")).map_err(io_err("reading .config"))?;
        let dropped = dropped_options(&self.fragment, &config);
        if !dropped.is_empty() {
            return Err(KernelError::ConfigDropped { options: dropped });
        }
        Ok(())
    }
}

/// Prefix of the temporary build directories next to the cache entries.
const BUILD_PREFIX: &str = ".build-";

/// `prefix` + this process id + `-`: lets a later run tell a temporary left
/// by a killed process from one still in use.
pub(crate) fn temp_prefix(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id())
}

/// Removes temporaries named by [`temp_prefix`] whose process is gone (a
/// build or cache write interrupted by a signal cannot clean up itself).
pub(crate) fn sweep_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = e.path();
        tracing::info!(path = %path.display(), "removing a temporary left by an interrupted run");
        let _ = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// The cache key of a fragment built from a source version.
pub fn cache_key(fragment: &str, source_version: &str) -> String {
    let mut h = Sha256::new();
    for part in [RECIPE_VERSION, source_version, fragment] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Options of `fragment` that `config` does not have as asked: `CONFIG_X=v`
/// lines missing verbatim, and `# CONFIG_X is not set` options that are set.
pub fn dropped_options(fragment: &str, config: &str) -> Vec<String> {
    let have: std::collections::HashSet<&str> = config.lines().map(str::trim).collect();
    let mut dropped = Vec::new();
    for line in fragment.lines().map(str::trim) {
        if line.starts_with("CONFIG_") {
            if !have.contains(line) {
                dropped.push(line.to_string());
            }
        } else if let Some(name) = line
            .strip_prefix("# ")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            let set = have.iter().any(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('=') && rest != "=n")
            });
            if set {
                dropped.push(line.to_string());
            }
        }
    }
    dropped
}

/// The complete cache entry in `dir`, if there is one.
fn read_entry(dir: &Path) -> Option<KernelArtifacts> {
    let a = KernelArtifacts {
        dir: dir.to_path_buf(),
        vmlinux: dir.join("vmlinux"),
        bzimage: dir.join("bzImage"),
        config: dir.join("config"),
        info: fs::read(dir.join("build.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()),
    };
    (a.vmlinux.is_file() && a.bzimage.is_file() && a.config.is_file()).then_some(a)
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map_or(0, |m| m.len())
}

/// Fails naming every build tool that is not on `PATH`.
fn check_tools() -> Result<(), KernelError> {
    let mut missing: Vec<&str> = ["make", "gcc", "flex", "bison", "bc", "tar", "xz", "perl"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !Path::new("/usr/include/libelf.h").exists() && !Path::new("/usr/include/gelf.h").exists() {
        missing.push("libelf-dev");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(KernelError::ToolsMissing {
            missing: missing.join(", "),
            hint: INSTALL_HINT,
        })
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Runs one build command in `dir`, feeding its output lines to the
/// progress bar and keeping the last ones for the error message.
fn run_step(
    dir: &Path,
    program: &str,
    args: &[&str],
    progress: &dyn Progress,
) -> Result<(), KernelError> {
    let step = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    tracing::debug!(%step, dir = %dir.display(), "kernel build step");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        // Reproducible build stamps.
        .env("KBUILD_BUILD_USER", "isolab")
        .env("KBUILD_BUILD_HOST", "isolab")
        .env("KBUILD_BUILD_TIMESTAMP", "2024-01-01")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!("starting `{step}`")))?;
    let stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let mut tail = std::collections::VecDeque::with_capacity(TAIL_LINES);
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        let shown = line.trim();
        if !shown.is_empty() {
            progress.step(shown);
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child
        .wait()
        .map_err(io_err(format!("waiting for `{step}`")))?;
    let errors = err_reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let mut lines: Vec<String> = tail.into_iter().collect();
    lines.extend(errors.into_iter().rev().take(TAIL_LINES).rev());
    Err(KernelError::StepFailed {
        step,
        status: status.to_string(),
        tail: lines.join("\n"),
    })
}

/// Where a kernel to boot came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// `--kernel PATH`.
    Explicit,
    /// The `ISOLAB_KERNEL` environment variable.
    Environment,
    /// The build cache.
    Cache,
}

/// The kernel a run boots: `explicit` (`--kernel`), else `$ISOLAB_KERNEL`,
/// else the cached `vmlinux` of the project's kernel.
pub fn resolve(explicit: Option<&Path>) -> Result<(PathBuf, KernelSource), KernelError> {
    resolve_with(
        explicit,
        std::env::var_os(KERNEL_ENV).map(PathBuf::from),
        &KernelBuild::default(),
    )
}

/// [`resolve`] with its inputs spelled out (testable without the process
/// environment).
pub fn resolve_with(
    explicit: Option<&Path>,
    env: Option<PathBuf>,
    build: &KernelBuild,
) -> Result<(PathBuf, KernelSource), KernelError> {
    let named = explicit
        .map(|p| {
            (
                p.to_path_buf(),
                KernelSource::Explicit,
                "--kernel".to_string(),
            )
        })
        .or_else(|| {
            env.filter(|p| !p.as_os_str().is_empty())
                .map(|p| (p, KernelSource::Environment, KERNEL_ENV.to_string()))
        });
    if let Some((path, source, origin)) = named {
        if !path.is_file() {
            return Err(KernelError::NamedKernelMissing { path, origin });
        }
        return Ok((path, source));
    }
    match build.cached() {
        Ok(Some(a)) => Ok((a.vmlinux, KernelSource::Cache)),
        Ok(None) | Err(KernelError::SourceMissing { .. }) => Err(KernelError::NotBuilt),
        Err(e) => Err(e),
    }
}

/// The cached project kernel, if built (for `isolab kernel path`).
pub fn cached_path() -> Result<Option<KernelArtifacts>, KernelError> {
    KernelBuild::default().cached()
}

/// Builds the project kernel with the defaults (for `isolab kernel build`).
pub fn build(progress: &dyn Progress) -> Result<KernelArtifacts, KernelError> {
    KernelBuild::default().build(progress)
}

/// How long the cached build took, if recorded.
pub fn build_time(a: &KernelArtifacts) -> Option<Duration> {
    a.info
        .as_ref()
        .map(|i| Duration::from_secs_f64(i.build_seconds))
}

#[cfg(test)]
mod tests;
