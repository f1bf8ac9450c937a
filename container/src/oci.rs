//! OCI runtime bundles (`config.json` + rootfs, as `runc spec` writes them).
//!
//! The config is checked against the OCI schema with `oci-spec` (wrong types
//! are a [`Error::BundleConfigMalformed`]), then every field present is
//! either mapped onto a [`ContainerSpec`] or rejected with
//! [`Error::UnsupportedOciField`] naming it. Unknown fields are rejected too:
//! a security setting this runtime does not know must never be dropped silently.

use std::path::Path;

use serde_json::{Map, Value};

use crate::cgroup::{CPU_PERIOD_US, DeviceRule, devices};
use crate::mounts::MountSpec;
use crate::security::capabilities::parse_names;
use crate::spec::{ContainerSpec, NetMode, Rlimit};
use crate::{Error, Result};

fn unsupported(field: &str, reason: &str) -> Error {
    Error::UnsupportedOciField {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// Rejects any key of `obj` (at JSON path `at`) not in `known`.
fn only(obj: &Map<String, Value>, at: &str, known: &[&str]) -> Result<()> {
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            let field = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            return Err(unsupported(
                &field,
                "isolab does not implement it (remove it from config.json)",
            ));
        }
    }
    Ok(())
}

/// True when a field is absent or "empty" (null, false, "", [], {}), i.e. asks for nothing.
fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

fn obj<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| unsupported(field, "must be an object"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Who reads the bundle: `isolab run --bundle`, or the OCI runtime command
/// line, which handles a terminal and a custom seccomp profile itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Run,
    Runtime,
}

/// A bundle as the OCI runtime command line reads it: the spec, plus the
/// parts the runtime layer handles (see `runtime/`).
#[derive(Debug, Clone)]
pub struct RuntimeBundle {
    /// The container to create.
    pub spec: ContainerSpec,
    /// The whole config, typed (annotations, terminal, seccomp profile…).
    pub config: oci_spec::runtime::Spec,
    /// The config as read (what `exec` starts from later).
    pub value: Value,
}

/// Loads `dir/config.json` for the OCI runtime: like [`load_bundle`], but
/// `process.terminal`, `process.oomScoreAdj`, `hooks` and `linux.seccomp` are left to the caller (the spec's
/// seccomp stays on with the default filter until the caller replaces it).
pub fn load_runtime_bundle(dir: &Path) -> Result<RuntimeBundle> {
    let (value, config) = read_config(dir)?;
    let spec = map_config(dir, &value, Reader::Runtime)?;
    Ok(RuntimeBundle {
        spec,
        config,
        value,
    })
}

/// Maps a config the runtime already holds (a saved one with `exec`'s
/// process in it) as [`load_runtime_bundle`] does; the root is relative to `dir`.
pub fn runtime_bundle_from(dir: &Path, value: Value) -> Result<RuntimeBundle> {
    let path = dir.join("config.json");
    let config =
        serde_json::from_value(value.clone()).map_err(|e| Error::BundleConfigMalformed {
            path,
            detail: e.to_string(),
        })?;
    let spec = map_config(dir, &value, Reader::Runtime)?;
    Ok(RuntimeBundle {
        spec,
        config,
        value,
    })
}

/// Reads and schema-checks `dir/config.json`.
fn read_config(dir: &Path) -> Result<(Value, oci_spec::runtime::Spec)> {
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|source| Error::BundleConfigUnreadable {
        path: path.clone(),
        source,
    })?;
    let malformed = |e: serde_json::Error| Error::BundleConfigMalformed {
        path: path.clone(),
        detail: e.to_string(),
    };
    let value: Value = serde_json::from_slice(&text).map_err(malformed)?;
    // Schema check: types and required fields, by the oci-spec model.
    let typed: oci_spec::runtime::Spec =
        serde_json::from_value(value.clone()).map_err(malformed)?;
    Ok((value, typed))
}

/// Loads `dir/config.json` and returns the equivalent spec (root relative to `dir`).
pub fn load_bundle(dir: &Path) -> Result<ContainerSpec> {
    let (value, _) = read_config(dir)?;
    from_value(dir, &value)
}

/// Maps an already parsed config (see [`load_bundle`]).
pub fn from_value(dir: &Path, v: &Value) -> Result<ContainerSpec> {
    map_config(dir, v, Reader::Run)
}

fn map_config(dir: &Path, v: &Value, reader: Reader) -> Result<ContainerSpec> {
    let top = obj(v, "config")?;
    only(
        top,
        "",
        &[
            "ociVersion",
            "process",
            "root",
            "hostname",
            "mounts",
            "linux",
            "annotations",
            "hooks",
        ],
    )?;
    check_hooks(top, reader)?;
    // Sections are checked in this order, so the first problem reported is the same.
    let root = map_root(top, dir)?;
    let process = process_section(top, reader)?;
    let mut spec = map_process(process, root.rootfs)?;
    spec.readonly_root = root.readonly;
    spec.no_new_privs = process
        .get("noNewPrivileges")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    spec.hostname = top
        .get("hostname")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(user) = process.get("user") {
        map_user(obj(user, "process.user")?, &mut spec)?;
    }
    map_capabilities(process, &mut spec)?;
    map_rlimits(process, &mut spec)?;
    map_mounts(top, &mut spec)?;

    // Whatever `linux` does not ask for is off.
    spec.masked_paths = Vec::new();
    spec.readonly_paths = Vec::new();
    spec.resources = Default::default();
    spec.net = NetMode::Host;
    spec.namespaces.uts = false;
    spec.namespaces.ipc = false;
    spec.namespaces.cgroup = false;
    spec.namespaces.time = false;
    spec.seccomp = false;
    if let Some(linux) = top.get("linux") {
        map_linux(obj(linux, "linux")?, &mut spec, reader)?;
    } else {
        return Err(unsupported(
            "linux",
            "is required: isolab always creates pid and mount namespaces",
        ));
    }
    Ok(spec)
}

/// `hooks`: only the OCI runtime command line runs them (`runtime/src/hooks.rs`);
/// here their shape is checked, so an unknown hook or key is named.
fn check_hooks(top: &Map<String, Value>, reader: Reader) -> Result<()> {
    let Some(hooks) = top.get("hooks") else {
        return Ok(());
    };
    if reader == Reader::Run {
        return if is_empty(Some(hooks)) {
            Ok(())
        } else {
            Err(unsupported(
                "hooks",
                "`isolab run --bundle` does not run hooks (the OCI runtime command line, \
                 `isolab create`/`start`, does)",
            ))
        };
    }
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let hooks = obj(hooks, "hooks")?;
    only(hooks, "hooks", &kinds)?;
    for (kind, list) in hooks {
        for (i, hook) in list.as_array().into_iter().flatten().enumerate() {
            let at = format!("hooks.{kind}[{i}]");
            only(obj(hook, &at)?, &at, &["path", "args", "env", "timeout"])?;
        }
    }
    Ok(())
}

/// The `root` section, resolved.
struct Root {
    /// The root filesystem (a relative `root.path` is taken from the bundle directory).
    rootfs: std::path::PathBuf,
    /// `root.readonly`.
    readonly: bool,
}

/// `root`: the path of the root filesystem and whether it is read-only.
fn map_root(top: &Map<String, Value>, dir: &Path) -> Result<Root> {
    let root = obj(
        top.get("root")
            .ok_or_else(|| unsupported("root", "is required"))?,
        "root",
    )?;
    only(root, "root", &["path", "readonly"])?;
    let root_path = root
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported("root.path", "is required"))?;
    let rootfs = if Path::new(root_path).is_absolute() {
        root_path.into()
    } else {
        dir.join(root_path)
    };
    Ok(Root {
        rootfs,
        readonly: root
            .get("readonly")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// `process`, checked for fields isolab cannot honour.
fn process_section(top: &Map<String, Value>, reader: Reader) -> Result<&Map<String, Value>> {
    let process = obj(
        top.get("process")
            .ok_or_else(|| unsupported("process", "is required"))?,
        "process",
    )?;
    only(
        process,
        "process",
        &[
            "terminal",
            "consoleSize",
            "user",
            "args",
            "env",
            "cwd",
            "capabilities",
            "rlimits",
            "noNewPrivileges",
            "apparmorProfile",
            "selinuxLabel",
            "oomScoreAdj",
        ],
    )?;
    if reader == Reader::Run && process.get("terminal").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(
            "process.terminal",
            "isolab has no console pty; set it to false",
        ));
    }
    for f in ["apparmorProfile", "selinuxLabel", "oomScoreAdj"] {
        // The runtime command line sets the init's score itself (dockerd asks for one).
        if f == "oomScoreAdj" && reader == Reader::Runtime {
            continue;
        }
        if !is_empty(process.get(f)) {
            return Err(unsupported(
                &format!("process.{f}"),
                "isolab cannot apply it",
            ));
        }
    }
    Ok(process)
}

/// `process.args`, `env` and `cwd`: the spec to run in `rootfs`.
fn map_process(process: &Map<String, Value>, rootfs: std::path::PathBuf) -> Result<ContainerSpec> {
    let args = strings(process.get("args"));
    let Some((program, rest)) = args.split_first() else {
        return Err(unsupported("process.args", "must name the program to run"));
    };
    let mut spec = ContainerSpec::with_rootfs(rootfs, program.clone()).args(rest.iter().cloned());
    spec.env = strings(process.get("env"));
    if let Some(cwd) = process.get("cwd").and_then(Value::as_str) {
        spec.cwd = cwd.to_string();
    }
    Ok(spec)
}

/// `process.user`: uid, gid and supplementary groups.
fn map_user(user: &Map<String, Value>, spec: &mut ContainerSpec) -> Result<()> {
    only(
        user,
        "process.user",
        &["uid", "gid", "additionalGids", "umask", "username"],
    )?;
    spec.umask = match user.get("umask") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| unsupported("process.user.umask", "must be a mode from 0 to 0777"))?
                as u32,
        ),
    };
    spec.uid = id(user.get("uid"), "process.user.uid")?;
    spec.gid = id(user.get("gid"), "process.user.gid")?;
    spec.additional_gids = user
        .get("additionalGids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|g| id(Some(g), "process.user.additionalGids"))
        .collect::<Result<_>>()?;
    Ok(())
}

/// `process.capabilities`: the five sets.
fn map_capabilities(process: &Map<String, Value>, spec: &mut ContainerSpec) -> Result<()> {
    // Absent capabilities means none at all, as in the OCI spec.
    let caps = process
        .get("capabilities")
        .map(|c| obj(c, "process.capabilities"))
        .transpose()?;
    if let Some(c) = caps {
        only(
            c,
            "process.capabilities",
            &[
                "bounding",
                "effective",
                "permitted",
                "inheritable",
                "ambient",
            ],
        )?;
    }
    let set = |name: &'static str| -> Result<u64> {
        parse_names(
            name,
            &strings(caps.and_then(|c| c.get(name.rsplit('.').next().unwrap_or(name)))),
        )
    };
    spec.capabilities.bounding = set("process.capabilities.bounding")?;
    spec.capabilities.effective = set("process.capabilities.effective")?;
    spec.capabilities.permitted = set("process.capabilities.permitted")?;
    spec.capabilities.inheritable = set("process.capabilities.inheritable")?;
    spec.capabilities.ambient = set("process.capabilities.ambient")?;
    // The kernel only keeps ambient capabilities that are also inheritable and
    // permitted (`runc spec` lists ambient ones without inheritable ones): the
    // rest are dropped, which only ever removes privilege.
    let keep = spec.capabilities.inheritable & spec.capabilities.permitted;
    if spec.capabilities.ambient & !keep != 0 {
        tracing::warn!(
            "process.capabilities.ambient: capabilities not inheritable and permitted are dropped"
        );
        spec.capabilities.ambient &= keep;
    }
    Ok(())
}

/// `process.rlimits`, replacing the spec's defaults.
fn map_rlimits(process: &Map<String, Value>, spec: &mut ContainerSpec) -> Result<()> {
    spec.rlimits = Vec::new();
    for r in process
        .get("rlimits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let r = obj(r, "process.rlimits[]")?;
        let name = r.get("type").and_then(Value::as_str).unwrap_or("");
        let resource = rlimit_resource(name)
            .ok_or_else(|| unsupported(&format!("process.rlimits[{name}]"), "unknown resource"))?;
        let get = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
        spec.rlimits.push(Rlimit {
            resource,
            soft: get("soft"),
            hard: get("hard"),
        });
    }
    Ok(())
}

/// `mounts`, replacing the spec's defaults (a cgroup filesystem shows the
/// container's own groups: `rootfs::cgroupfs`).
fn map_mounts(top: &Map<String, Value>, spec: &mut ContainerSpec) -> Result<()> {
    spec.mounts = Vec::new();
    for (i, m) in top
        .get("mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("mounts[{i}]");
        let m = obj(m, &at)?;
        only(m, &at, &["destination", "type", "source", "options"])?;
        let get = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mount = MountSpec {
            destination: get("destination"),
            fstype: get("type"),
            source: get("source"),
            options: strings(m.get("options")),
        };
        spec.mounts.push(mount);
    }
    Ok(())
}

/// A user or group id: 0 to 2^31 − 1, as runc accepts (`(uid_t)-1` would
/// leave the program running as root).
fn id(v: Option<&Value>, field: &'static str) -> Result<u32> {
    let Some(v) = v else { return Ok(0) };
    match v.as_u64() {
        Some(n) if n <= u64::from(crate::validate::MAX_ID) => Ok(n as u32),
        _ => Err(Error::InvalidSpec {
            field,
            value: v.to_string(),
            reason: format!("must be an id from 0 to {}", crate::validate::MAX_ID),
        }),
    }
}

/// A positive limit at JSON path `field`, or an error saying how to ask for none.
fn positive(v: Option<&Value>, field: &'static str) -> Result<Option<i64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_i64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(Error::InvalidSpec {
                field,
                value: x.to_string(),
                reason: "must be a positive number (leave the field out for no limit)".into(),
            }),
        },
    }
}

/// `linux`: refusals first, then namespaces, paths and resources.
fn map_linux(linux: &Map<String, Value>, spec: &mut ContainerSpec, reader: Reader) -> Result<()> {
    reject_linux_fields(linux, reader)?;
    spec.sysctls = linux
        .get("sysctl")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    // Without a profile of its own the bundle gets the default filter.
    spec.seccomp = true;
    if let Some(p) = linux.get("rootfsPropagation").and_then(Value::as_str)
        && !matches!(p, "slave" | "rslave" | "private" | "rprivate" | "")
    {
        return Err(unsupported(
            "linux.rootfsPropagation",
            "only private or slave propagation is supported",
        ));
    }
    map_namespaces(linux, spec)?;
    let uts_joined = spec
        .join_namespaces
        .iter()
        .any(|(f, _)| *f == libc::CLONE_NEWUTS);
    if !spec.namespaces.uts && !uts_joined && !spec.hostname.is_empty() {
        return Err(unsupported("hostname", "needs a uts namespace"));
    }
    spec.cgroup_path = linux
        .get("cgroupsPath")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    spec.masked_paths = strings(linux.get("maskedPaths"));
    spec.readonly_paths = strings(linux.get("readonlyPaths"));
    if let Some(res) = linux.get("resources") {
        map_resources(obj(res, "linux.resources")?, spec)?;
    }
    Ok(())
}

/// Unknown `linux` fields, and known ones isolab does not implement, when set.
fn reject_linux_fields(linux: &Map<String, Value>, reader: Reader) -> Result<()> {
    only(
        linux,
        "linux",
        &[
            "namespaces",
            "resources",
            "maskedPaths",
            "readonlyPaths",
            "cgroupsPath",
            "rootfsPropagation",
            "uidMappings",
            "gidMappings",
            "seccomp",
            "sysctl",
            "devices",
            "mountLabel",
        ],
    )?;
    for f in ["uidMappings", "gidMappings", "devices", "mountLabel"] {
        if !is_empty(linux.get(f)) {
            return Err(unsupported(
                &format!("linux.{f}"),
                "isolab does not implement it",
            ));
        }
    }
    if reader == Reader::Run && !is_empty(linux.get("seccomp")) {
        return Err(unsupported(
            "linux.seccomp",
            "custom seccomp profiles are not supported; remove it and isolab installs its default filter",
        ));
    }
    Ok(())
}

/// `linux.namespaces`: new ones only, pid and mount among them.
fn map_namespaces(linux: &Map<String, Value>, spec: &mut ContainerSpec) -> Result<()> {
    let mut seen = Vec::new();
    for (i, ns) in linux
        .get("namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ns = obj(ns, &format!("linux.namespaces[{i}]"))?;
        let t = ns.get("type").and_then(Value::as_str).unwrap_or("");
        if let Some(path) = ns
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            // Joined, not created (a pod's sandbox): set up by its owner.
            let flag = match t {
                "network" => libc::CLONE_NEWNET,
                "ipc" => libc::CLONE_NEWIPC,
                "uts" => libc::CLONE_NEWUTS,
                _ => {
                    return Err(unsupported(
                        &format!("linux.namespaces[{t}].path"),
                        "isolab joins only network, ipc and uts namespaces by path",
                    ));
                }
            };
            spec.join_namespaces.push((flag, path.into()));
            seen.push(t.to_string());
            continue;
        }
        match t {
            "pid" | "mount" => {}
            "network" => spec.net = NetMode::Loopback,
            "uts" => spec.namespaces.uts = true,
            "ipc" => spec.namespaces.ipc = true,
            "cgroup" => spec.namespaces.cgroup = true,
            "time" => spec.namespaces.time = true,
            other => {
                return Err(unsupported(
                    &format!("linux.namespaces[{other}]"),
                    "isolab does not create this namespace",
                ));
            }
        }
        seen.push(t.to_string());
    }
    for needed in ["pid", "mount"] {
        if !seen.iter().any(|s| s == needed) {
            return Err(unsupported(
                "linux.namespaces",
                &format!("isolab always creates a {needed} namespace; add it"),
            ));
        }
    }
    Ok(())
}

/// `linux.resources.blockIO`: accepted only when it asks for nothing (dockerd
/// always sends one, with a zero weight); isolab does not limit block I/O.
fn reject_block_io(b: Option<&Value>) -> Result<()> {
    let Some(b) = b else { return Ok(()) };
    for (k, v) in obj(b, "linux.resources.blockIO")? {
        let zero_weight = k.ends_with("eight") && v.as_u64() == Some(0);
        if !is_empty(Some(v)) && !zero_weight {
            return Err(unsupported(
                &format!("linux.resources.blockIO.{k}"),
                "isolab does not limit block I/O",
            ));
        }
    }
    Ok(())
}

fn map_resources(res: &Map<String, Value>, spec: &mut ContainerSpec) -> Result<()> {
    only(
        res,
        "linux.resources",
        &["memory", "cpu", "pids", "devices", "blockIO"],
    )?;
    map_devices(res.get("devices"), spec)?;
    reject_block_io(res.get("blockIO"))?;
    if let Some(m) = res.get("memory") {
        let m = obj(m, "linux.resources.memory")?;
        only(
            m,
            "linux.resources.memory",
            &["limit", "swap", "disableOOMKiller"],
        )?;
        // dockerd always says `false`; the kernel's OOM killer stays on.
        if m.get("disableOOMKiller").and_then(Value::as_bool) == Some(true) {
            return Err(unsupported(
                "linux.resources.memory.disableOOMKiller",
                "isolab keeps the OOM killer on",
            ));
        }
        let limit = positive(m.get("limit"), "linux.resources.memory.limit")?;
        spec.resources.memory_swap = match m.get("swap").and_then(Value::as_i64) {
            None => None,
            Some(-1) => Some(u64::MAX),
            Some(s) if limit.is_some_and(|l| s >= l) => Some(s as u64),
            Some(s) => {
                return Err(Error::InvalidSpec {
                    field: "linux.resources.memory.swap",
                    value: s.to_string(),
                    reason: "must be -1 (unlimited) or at least the memory limit (it counts memory plus swap)".into(),
                });
            }
        };
        spec.resources.memory = limit.map(|l| l as u64);
    }
    if let Some(c) = res.get("cpu") {
        let c = obj(c, "linux.resources.cpu")?;
        only(
            c,
            "linux.resources.cpu",
            &["quota", "period", "shares", "cpus", "mems"],
        )?;
        spec.resources.cpuset_cpus = cpu_list(c.get("cpus"), "linux.resources.cpu.cpus")?;
        spec.resources.cpuset_mems = cpu_list(c.get("mems"), "linux.resources.cpu.mems")?;
        let quota = positive(c.get("quota"), "linux.resources.cpu.quota")?;
        let period = positive(c.get("period"), "linux.resources.cpu.period")?;
        if let Some(q) = quota {
            let period = period.map_or(CPU_PERIOD_US, |p| p as u64);
            spec.resources.cpus = Some(q as f64 / period as f64);
            spec.resources.cpu_period = Some(period);
        }
        // dockerd sends `shares: 0` for "not set", as the kernel's own default.
        let shares = c.get("shares").filter(|v| v.as_u64() != Some(0));
        spec.resources.cpu_shares =
            positive(shares, "linux.resources.cpu.shares")?.map(|s| s as u64);
    }
    if let Some(p) = res.get("pids") {
        let p = obj(p, "linux.resources.pids")?;
        only(p, "linux.resources.pids", &["limit"])?;
        spec.resources.pids =
            positive(p.get("limit"), "linux.resources.pids.limit")?.map(|l| l as u64);
    }
    Ok(())
}

/// `cpu.cpus` or `cpu.mems`: a list string; empty (dockerd's "not set")
/// leaves the parent group's.
fn cpu_list(v: Option<&Value>, field: &'static str) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => crate::cgroup::cpuset::parse_list(field, s).map(Some),
        Some(other) => Err(Error::InvalidSpec {
            field,
            value: other.to_string(),
            reason: "must be a string like \"0-3,6\"".into(),
        }),
    }
}

/// `linux.resources.devices`: the bundle's rules, then the default devices
/// (as runc adds them), evaluated last match first by the device cgroup.
fn map_devices(v: Option<&Value>, spec: &mut ContainerSpec) -> Result<()> {
    let mut rules: Vec<DeviceRule> = Vec::new();
    for (i, d) in v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("linux.resources.devices[{i}]");
        let d = obj(d, &at)?;
        only(d, &at, &["allow", "type", "major", "minor", "access"])?;
        rules.push(DeviceRule::from_oci(
            &at,
            d.get("allow").and_then(Value::as_bool).unwrap_or(false),
            d.get("type").and_then(Value::as_str),
            d.get("major").and_then(Value::as_i64),
            d.get("minor").and_then(Value::as_i64),
            d.get("access").and_then(Value::as_str),
        )?);
    }
    rules.extend(devices::default_rules());
    spec.devices = Some(rules);
    Ok(())
}

// The casts are no-ops on glibc (u32) but not on musl (c_int).
#[allow(clippy::unnecessary_cast)]
fn rlimit_resource(name: &str) -> Option<u32> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `runc spec` writes (runc 1.1), with terminal off and a real program.
    fn runc_default() -> Value {
        serde_json::json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["/bin/sh", "-c", "true"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {
                    "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                    "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "runc",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        })
    }

    #[test]
    fn runc_default_bundle_maps_onto_a_spec() {
        let s = from_value(Path::new("/b"), &runc_default()).unwrap();
        assert_eq!(s.root, crate::RootSpec::Dir("/b/rootfs".into()));
        assert_eq!(
            (s.program.as_str(), s.args.as_slice()),
            ("/bin/sh", &["-c".to_string(), "true".into()][..])
        );
        assert!(s.readonly_root && s.no_new_privs && s.seccomp);
        assert_eq!(s.hostname, "runc");
        assert_eq!(s.net, NetMode::Loopback);
        assert_eq!(s.capabilities.bounding, (1 << 29) | (1 << 5) | (1 << 10));
        assert_eq!(
            s.rlimits,
            [Rlimit {
                resource: rlimit_resource("RLIMIT_NOFILE").unwrap(),
                soft: 1024,
                hard: 1024
            }]
        );
        // The cgroup mount is kept (shown as the container's own groups).
        assert_eq!(s.mounts.len(), 4);
        assert_eq!(s.mounts[3].fstype, "cgroup");
        assert_eq!(s.masked_paths, ["/proc/kcore"]);
    }

    #[test]
    fn unknown_field_is_named() {
        let mut v = runc_default();
        v["linux"]["frobnicate"] = true.into();
        match from_value(Path::new("/b"), &v).unwrap_err() {
            Error::UnsupportedOciField { field, .. } => assert_eq!(field, "linux.frobnicate"),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn security_relevant_fields_are_rejected_not_ignored() {
        for (path, val) in [
            (
                "seccomp",
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}),
            ),
            (
                "uidMappings",
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
            ),
        ] {
            let mut v = runc_default();
            v["linux"][path] = val;
            let err = from_value(Path::new("/b"), &v).unwrap_err().to_string();
            assert!(err.contains(&format!("linux.{path}")), "{err}");
        }
        let mut v = runc_default();
        v["process"]["terminal"] = true.into();
        assert!(
            from_value(Path::new("/b"), &v)
                .unwrap_err()
                .to_string()
                .contains("process.terminal")
        );
    }

    #[test]
    fn hooks_are_the_runtime_command_line_s() {
        let mut v = runc_default();
        v["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/true"}]});
        let e = from_value(Path::new("/b"), &v).unwrap_err().to_string();
        assert!(e.contains("`hooks` is not supported: `isolab run"), "{e}");
        // The runtime's reader takes them and names what it does not know.
        let top = v.as_object().unwrap();
        assert!(check_hooks(top, Reader::Runtime).is_ok());
        v["hooks"]["prestart"][0]["cwd"] = "/".into();
        let e = check_hooks(v.as_object().unwrap(), Reader::Runtime).unwrap_err();
        assert!(e.to_string().contains("hooks.prestart[0].cwd"), "{e}");
        v["hooks"] = serde_json::json!({"preStop": []});
        let e = check_hooks(v.as_object().unwrap(), Reader::Runtime).unwrap_err();
        assert!(e.to_string().contains("hooks.preStop"), "{e}");
    }

    #[test]
    fn device_rules_come_before_the_default_devices() {
        let mut v = runc_default();
        v["linux"]["resources"]["devices"] = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}
        ]);
        let s = from_value(Path::new("/b"), &v).unwrap();
        let rules = s.devices.unwrap();
        use devices::{DeviceKind, access, allowed};
        assert!(allowed(&rules, DeviceKind::Block, 8, 0, access::READ));
        assert!(!allowed(&rules, DeviceKind::Block, 8, 0, access::WRITE));
        assert!(allowed(&rules, DeviceKind::Char, 1, 3, access::ALL));
        assert!(!allowed(&rules, DeviceKind::Char, 10, 232, access::MKNOD));
        v["linux"]["resources"]["devices"] = serde_json::json!([{"allow": true, "type": "q"}]);
        let e = from_value(Path::new("/b"), &v).unwrap_err().to_string();
        assert!(e.contains("devices[0].type"), "{e}");
    }

    #[test]
    fn ids_above_2_31_and_non_positive_limits_are_refused_by_field() {
        for (field, val) in [
            ("uid", serde_json::json!(4294967295u64)),
            ("gid", serde_json::json!(2147483648u64)),
            ("additionalGids", serde_json::json!([1, 4294967295u64])),
        ] {
            let mut v = runc_default();
            v["process"]["user"][field] = val;
            let e = from_value(Path::new("/b"), &v).unwrap_err().to_string();
            assert!(e.contains(&format!("process.user.{field}")), "{e}");
        }
        let mut v = runc_default();
        v["process"]["user"]["uid"] = serde_json::json!(2147483647u64);
        assert_eq!(from_value(Path::new("/b"), &v).unwrap().uid, 2147483647);
        for (path, key, val) in [
            ("memory", "limit", -1),
            ("memory", "limit", 0),
            ("cpu", "quota", -1),
            ("pids", "limit", 0),
        ] {
            let mut v = runc_default();
            v["linux"]["resources"][path] = serde_json::json!({ key: val });
            let e = from_value(Path::new("/b"), &v).unwrap_err().to_string();
            assert!(e.contains(&format!("linux.resources.{path}.{key}")), "{e}");
        }
    }

    #[test]
    fn resources_map_to_limits() {
        let mut v = runc_default();
        v["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864});
        v["linux"]["resources"]["cpu"] =
            serde_json::json!({"quota": 25000, "period": 50000, "shares": 1024});
        v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 64});
        let s = from_value(Path::new("/b"), &v).unwrap();
        assert_eq!(s.resources.memory, Some(64 << 20));
        assert_eq!(s.resources.cpus, Some(0.5));
        assert_eq!(s.resources.cpu_period, Some(50000));
        assert_eq!(s.resources.cpu_shares, Some(1024));
        assert_eq!(s.resources.pids, Some(64));
    }

    #[test]
    fn cpusets_map_and_bad_lists_are_named() {
        let mut v = runc_default();
        v["linux"]["resources"]["cpu"] = serde_json::json!({"cpus": "0-1", "mems": ""});
        let s = from_value(Path::new("/b"), &v).unwrap();
        assert_eq!(s.resources.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(s.resources.cpuset_mems, None);
        for (key, bad) in [
            ("cpus", serde_json::json!("2-1")),
            ("mems", serde_json::json!(0)),
        ] {
            v["linux"]["resources"]["cpu"] = serde_json::json!({ key: bad });
            match from_value(Path::new("/b"), &v).unwrap_err() {
                Error::InvalidSpec { field, .. } => {
                    assert_eq!(field, format!("linux.resources.cpu.{key}"))
                }
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn malformed_config_reports_path_and_position() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            "{\"ociVersion\": \"1.0.2\",\n \"process\": [",
        )
        .unwrap();
        match load_bundle(d.path()).unwrap_err() {
            Error::BundleConfigMalformed { path, detail } => {
                assert_eq!(path, d.path().join("config.json"));
                assert!(detail.contains("line 2"), "{detail}");
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn missing_config_is_its_own_error() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_bundle(d.path()),
            Err(Error::BundleConfigUnreadable { .. })
        ));
    }
}
