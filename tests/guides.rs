//! The guides are executable: every ```sh block in `guides/{en,ko}/*.md` is
//! run with bash, and the ```text block that follows it is checked loosely
//! against the output. The block syntax is documented at the top of
//! `guides/README.md`; this file is its implementation.
//!
//! - `guides_are_complete`: both languages have the same labs, every lab has
//!   its sections and at least three questions, `guides/README.md` links
//!   every lab, the English and Korean versions of a lab contain the same
//!   commands and the same expected output (so they cannot drift), and every
//!   `needs=` name is one this file knows.
//! - `guide_commands_run`: runs every command block once (from `en/`; the
//!   Korean blocks are identical, checked above), in order, one fresh
//!   working directory per lab, with the freshly built `isolab` first on
//!   `PATH`. A `text {sample}` block (one machine's full output, shown for
//!   discussion) is checked against the fresh output of the command block
//!   before it by its key lines: each line's words before the first one
//!   with a digit must still appear, in order, with the same marks (`†`). A block whose needs this host lacks is skipped through the
//!   project's test policy (`hostcaps::testing`: `SKIP <test>: <reason>`,
//!   refused under CI for capabilities listed in `ISOLAB_REQUIRE`).
//!
//! Environment: `ISOLAB_GUIDES_ONLY=03` runs only the labs whose file name
//! starts with `03`; `ISOLAB_GUIDES_SLOW=1` also runs blocks marked `slow`;
//! `ISOLAB_GUIDES_NEEDS=linux-guest,cgroup-v2` runs only the blocks that
//! declare one of those needs (what the emulated test host runs).
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hostcaps::cgroup::CgroupMode;
use hostcaps::kvm::KvmKind;
use hostcaps::namespaces::Namespace;
use hostcaps::testing;

const LANGS: [&str; 2] = ["en", "ko"];
/// How many labs each language has. Lab numbers increase but may have gaps
/// (a lab can be merged before the one numbered below it).
const LABS: usize = 14;
const DEFAULT_TIMEOUT_S: u64 = 120;

/// The needs a block may declare, and what they mean (also in guides/README.md).
const KNOWN_NEEDS: &[&str] = &[
    "root",
    "kvm",
    "tiny-guest",
    "linux-guest",
    "hardware-kvm",
    "guest-kernel",
    "cgroup-memory",
    "cgroup-cpu",
    "cgroup-pids",
    "cgroup-v1",
    "cgroup-v2",
    "userns",
    "seccomp",
    "busybox",
    "cc",
    "cargo",
    "runc",
    "bwrap",
    "fio",
    "qemu",
    "podman",
    "skopeo",
    "umoci",
    "docker-registry",
    "containerd",
    "etcd",
    "slow",
    "isolab-bench",
    "isolab-report",
];

/// Headings every lab must have, per language (level-2 headings, prefix match).
fn required_sections(lang: &str) -> &'static [&'static str] {
    match lang {
        "en" => &[
            "Goal",
            "Background",
            "Steps",
            "Questions",
            "Instructor notes",
        ],
        _ => &["목표", "배경", "실습", "질문", "강사 노트"],
    }
}

fn guides_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guides")
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Info {
    lang: String,
    needs: Vec<String>,
    no_run: bool,
    sample: bool,
    /// For a sample: check only its first N non-blank lines (the rest depend on the host).
    keys: Option<usize>,
    timeout: Option<u64>,
}

#[derive(Debug, Clone)]
struct Fence {
    line: usize,
    info: Info,
    body: String,
}

#[derive(Debug, Clone)]
struct Block {
    line: usize,
    info: Info,
    code: String,
    /// The `text` block right after this one, unless it is a `{sample}`.
    expect: Option<(usize, String)>,
    /// The `text {sample}` blocks after this one (before the next command block),
    /// with their `keys=` limit.
    samples: Vec<(usize, String, Option<usize>)>,
}

#[derive(Debug)]
struct Lab {
    name: String,
    text: String,
    blocks: Vec<Block>,
}

fn parse_info(raw: &str) -> Result<Info, String> {
    let raw = raw.trim();
    let (lang, rest) = match raw.find(|c: char| c.is_whitespace() || c == '{') {
        Some(i) => (&raw[..i], raw[i..].trim()),
        None => (raw, ""),
    };
    let mut info = Info {
        lang: lang.to_string(),
        ..Info::default()
    };
    if rest.is_empty() {
        return Ok(info);
    }
    let inner = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("info string `{raw}`: attributes go in one pair of braces"))?;
    for attr in inner.split_whitespace() {
        match attr.split_once('=') {
            Some(("needs", v)) => info
                .needs
                .extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string)),
            Some(("keys", v)) => {
                info.keys = Some(v.parse().map_err(|_| format!("bad keys `{v}`"))?)
            }
            Some(("timeout", v)) => {
                info.timeout = Some(
                    v.trim_end_matches('s')
                        .parse()
                        .map_err(|_| format!("bad timeout `{v}`"))?,
                )
            }
            None if attr == "no-run" => info.no_run = true,
            None if attr == "sample" => info.sample = true,
            _ => return Err(format!("info string `{raw}`: unknown attribute `{attr}`")),
        }
    }
    Ok(info)
}

fn fences(text: &str) -> Result<Vec<Fence>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with("```") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        let info = parse_info(&trimmed[ticks..]).map_err(|e| format!("line {}: {e}", i + 1))?;
        let mut body = String::new();
        let mut closed = false;
        for (_, l) in lines.by_ref() {
            let t = l.trim_start();
            if t.starts_with(&"`".repeat(ticks)) && t.trim_matches('`').trim().is_empty() {
                closed = true;
                break;
            }
            let strip = l.len() - l.trim_start().len();
            body.push_str(&l[strip.min(indent)..]);
            body.push('\n');
        }
        if !closed {
            return Err(format!("line {}: unclosed code block", i + 1));
        }
        out.push(Fence {
            line: i + 1,
            info,
            body,
        });
    }
    Ok(out)
}

fn parse_lab(path: &Path) -> Result<Lab, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fs_ = fences(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut blocks: Vec<Block> = Vec::new();
    let mut prev_was_sh = false;
    for f in fs_ {
        match f.info.lang.as_str() {
            "sh" => {
                blocks.push(Block {
                    line: f.line,
                    info: f.info,
                    code: f.body,
                    expect: None,
                    samples: Vec::new(),
                });
                prev_was_sh = true;
            }
            "text" if f.info.sample => {
                if let Some(b) = blocks.last_mut() {
                    b.samples.push((f.line, f.body, f.info.keys));
                }
                prev_was_sh = false;
            }
            "text" if prev_was_sh => {
                blocks.last_mut().unwrap().expect = Some((f.line, f.body));
                prev_was_sh = false;
            }
            _ => prev_was_sh = false,
        }
    }
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    Ok(Lab { name, text, blocks })
}

fn labs(lang: &str) -> Vec<Lab> {
    let dir = guides_dir().join(lang);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        // Labs are `NN-name.md`; other pages (e.g. the generated escape table) are references.
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.len() > 3
                && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
                && name.as_bytes()[2] == b'-'
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| parse_lab(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// The lines of a command block that must agree across languages: comment
/// lines (`# …`) may be translated, everything else may not.
fn command_lines(code: &str) -> Vec<&str> {
    code.lines()
        .map(str::trim_end)
        .filter(|l| !(l.trim_start() == "#" || l.trim_start().starts_with("# ")))
        .collect()
}

// ---------------------------------------------------------------- matching

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Does one output line match one pattern line? `…` stands for any text;
/// the rest must appear in order (whitespace runs compare as one space).
fn line_matches(pattern: &str, line: &str) -> bool {
    let line = normalize(line);
    let mut pos = 0;
    for piece in pattern.split('…') {
        let piece = normalize(piece);
        if piece.is_empty() {
            continue;
        }
        match line[pos..].find(&piece) {
            Some(at) => pos += at + piece.len(),
            None => return false,
        }
    }
    true
}

/// The checked lines of an expected-output block: every non-blank line that
/// is not just `…`.
fn patterns(expect: &str) -> Vec<&str> {
    expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "…")
        .collect()
}

/// Every pattern must match an output line, in order. Returns the first
/// pattern that did not.
fn check_output<'a>(expect: &'a str, output: &str) -> Result<(), &'a str> {
    let lines: Vec<&str> = output.lines().collect();
    let mut next = 0;
    for p in patterns(expect) {
        match lines[next..].iter().position(|l| line_matches(p, l)) {
            Some(i) => next += i + 1,
            None => return Err(p),
        }
    }
    Ok(())
}

/// Marks that must stay on the row that carries them (footnote references).
const MARKS: &[char] = &['†', '‡', '§'];

/// The key of one sample line: its words before the first word that holds a
/// digit (numbers, times and ids vary between runs; labels do not).
fn sample_key(line: &str) -> String {
    line.split_whitespace()
        .take_while(|w| !w.chars().any(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sample is still what the command prints: for each of its first `keys`
/// non-blank lines with a non-empty key, an output line (in order) contains
/// that key and every mark the sample line carries.
fn check_sample(sample: &str, keys: Option<usize>, output: &str) -> Result<(), String> {
    let lines: Vec<String> = output.lines().map(normalize).collect();
    let mut next = 0;
    let checked = sample
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(keys.unwrap_or(usize::MAX));
    for l in checked {
        let key = sample_key(l);
        if key.is_empty() || key == "…" {
            continue;
        }
        let marks: Vec<char> = l.chars().filter(|c| MARKS.contains(c)).collect();
        let found = lines[next..]
            .iter()
            .position(|o| o.contains(&key) && marks.iter().all(|m| o.contains(*m)));
        match found {
            Some(i) => next += i + 1,
            None => {
                let marks: String = marks.iter().collect();
                return Err(format!(
                    "no output line has `{key}`{} (sample line `{}`)",
                    if marks.is_empty() {
                        String::new()
                    } else {
                        format!(" with `{marks}`")
                    },
                    l.trim()
                ));
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ needs

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

fn isolab() -> &'static str {
    env!("CARGO_BIN_EXE_isolab")
}

/// `isolab doctor --json`, once.
fn doctor() -> &'static Result<serde_json::Value, String> {
    static DOCTOR: OnceLock<Result<serde_json::Value, String>> = OnceLock::new();
    DOCTOR.get_or_init(|| {
        let out = Command::new(isolab())
            .args(["doctor", "--json"])
            .output()
            .map_err(|e| format!("isolab doctor: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`isolab doctor --json` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("`isolab doctor --json` is not JSON: {e}"))
    })
}

fn doctor_field<'a>(v: &'a serde_json::Value, path: &str) -> Result<&'a serde_json::Value, String> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .ok_or_else(|| format!("`isolab doctor --json` has no `{path}`"))
}

fn doctor_flag(path: &str, what: &str) -> Result<(), String> {
    let d = doctor().as_ref().map_err(Clone::clone)?;
    match doctor_field(d, path)? {
        serde_json::Value::Bool(true) => Ok(()),
        _ => Err(format!("{what}: `isolab doctor` reports {path} = false")),
    }
}

fn cgroup_mode(want: CgroupMode) -> Result<(), String> {
    let mode = hostcaps::cgroup::mode();
    // hybrid hosts have the v1 controllers
    let ok = mode == want || (want == CgroupMode::V1 && mode == CgroupMode::Hybrid);
    if ok {
        Ok(())
    } else {
        Err(format!("needs cgroup {want:?}; this host is {mode:?}"))
    }
}

fn program(name: &str, package: &str) -> Result<(), String> {
    if on_path(name) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not installed (Debian package `{package}`)"
        ))
    }
}

/// Whether this build of `isolab` has a subcommand: a command that is not
/// built yet answers with a fixed message (and exit status 2) that is a
/// string literal in the binary, so look for it there without running anything.
fn built(stub_message: &str) -> Result<(), String> {
    let bin = fs::read(isolab()).map_err(|e| format!("{}: {e}", isolab()))?;
    let needle = stub_message.as_bytes();
    let found = bin
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == needle[0])
        .any(|(i, _)| bin[i..].starts_with(needle));
    if found {
        Err(format!("this build of isolab says: {stub_message}"))
    } else {
        Ok(())
    }
}

/// Evaluates one need; `Err` is the reason to skip.
fn need(name: &str) -> Result<(), String> {
    match name {
        "root" => {
            if hostcaps::is_root() {
                Ok(())
            } else {
                Err("needs root (run the tests as root)".into())
            }
        }
        "kvm" => hostcaps::kvm::device_usable(),
        "tiny-guest" => doctor_flag("kvm.tiny_guest", "needs the tiny guest"),
        "linux-guest" => doctor_flag(
            "kvm.linux_guest",
            "needs a host that can boot a Linux guest (hardware KVM; `isolab doctor` says linux_guest unsupported here)",
        ),
        "hardware-kvm" => match hostcaps::kvm::facts().kind {
            KvmKind::Hardware => Ok(()),
            other => Err(format!("needs hardware KVM; this host's KVM is {other:?}")),
        },
        "guest-kernel" => {
            let out = Command::new(isolab())
                .args(["kernel", "path"])
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "needs the guest kernel (run `isolab kernel build` first): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        }
        "cgroup-memory" | "cgroup-cpu" | "cgroup-pids" => {
            let c = &name["cgroup-".len()..];
            hostcaps::cgroup::controller_usable(c)
                .map_err(|e| format!("the cgroup `{c}` controller is not usable: {e}"))
        }
        "cgroup-v1" => cgroup_mode(CgroupMode::V1),
        "cgroup-v2" => cgroup_mode(CgroupMode::V2),
        "userns" => hostcaps::namespaces::can_create(Namespace::User),
        "seccomp" => hostcaps::features::seccomp(),
        "busybox" => program("busybox", "busybox-static"),
        "cc" => program("cc", "gcc"),
        "cargo" => program("cargo", "rustup"),
        "runc" => program("runc", "runc"),
        "bwrap" => program("bwrap", "bubblewrap"),
        "fio" => program("fio", "fio"),
        "qemu" => program("qemu-system-x86_64", "qemu-system-x86"),
        "podman" => program("podman", "podman"),
        "skopeo" => program("skopeo", "skopeo"),
        "umoci" => program("umoci", "umoci"),
        "docker-registry" => program("docker-registry", "docker-registry"),
        "containerd" => {
            program("containerd", "containerd").and_then(|()| program("ctr", "containerd"))
        }
        "etcd" => program("etcd", "etcd-server").and_then(|()| program("etcdctl", "etcd-client")),
        "slow" => {
            if std::env::var("ISOLAB_GUIDES_SLOW").is_ok_and(|v| v == "1") {
                Ok(())
            } else {
                Err("slow block (minutes); set ISOLAB_GUIDES_SLOW=1 to run it".into())
            }
        }
        "isolab-bench" => built("`isolab bench` is not built yet"),
        "isolab-report" => built("`isolab report` is not built yet"),
        other => Err(format!("unknown need `{other}`")),
    }
}

// ---------------------------------------------------------------- running

enum Ran {
    Ok,
    Failed(String),
}

fn run_block(code: &str, cwd: &Path, logs: &Path, n: usize, timeout: Duration) -> (Ran, String) {
    let script = logs.join(format!("block-{n}.sh"));
    let log = logs.join(format!("block-{n}.out"));
    fs::write(&script, format!("set -e\nexec 2>&1\n{code}")).unwrap();
    let out = fs::File::create(&log).unwrap();
    let bin_dir = Path::new(isolab()).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("bash")
        .arg("--noprofile")
        .arg("--norc")
        .arg(&script)
        .current_dir(cwd)
        .env("PATH", path)
        .env("ISOLAB_SRC", env!("CARGO_MANIFEST_DIR"))
        .env("LC_ALL", "C.UTF-8")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("bash");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let stragglers of the process group go too (a block must not leave any).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let mut output = String::new();
    let _ = fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut output));
    let ran = match status {
        None => Ran::Failed(format!("timed out after {} s", timeout.as_secs())),
        Some(s) if !s.success() => Ran::Failed(format!("exited with {s}")),
        Some(_) => Ran::Ok,
    };
    (ran, output)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ------------------------------------------------------------------ tests

#[test]
fn guides_are_complete() {
    let mut problems = Vec::new();
    let by_lang: BTreeMap<&str, Vec<Lab>> = LANGS.iter().map(|l| (*l, labs(l))).collect();
    let readme = fs::read_to_string(guides_dir().join("README.md")).expect("guides/README.md");

    for (lang, labs) in &by_lang {
        if labs.len() != LABS {
            problems.push(format!("{lang}: {} labs, expected {LABS}", labs.len()));
        }
        let mut previous = 0;
        for lab in labs.iter() {
            // `labs()` keeps only `NN-*.md`, sorted: numbers must start at 01 and not repeat.
            let number: u32 = lab.name[..2].parse().unwrap();
            if number <= previous || (previous == 0 && number != 1) {
                problems.push(format!(
                    "{lang}/{}: lab numbers must start at 01 and increase",
                    lab.name
                ));
            }
            previous = number;
            if !readme.contains(&format!("({lang}/{})", lab.name)) {
                problems.push(format!(
                    "guides/README.md does not link {lang}/{}",
                    lab.name
                ));
            }
            let headings: Vec<&str> = lab
                .text
                .lines()
                .filter_map(|l| l.strip_prefix("## "))
                .collect();
            let mut section_at = Vec::new();
            for s in required_sections(lang) {
                match headings.iter().position(|h| h.starts_with(s)) {
                    Some(p) => section_at.push(p),
                    None => problems.push(format!("{lang}/{}: no `## {s}` section", lab.name)),
                }
            }
            if !section_at.windows(2).all(|w| w[0] < w[1]) {
                problems.push(format!("{lang}/{}: sections out of order", lab.name));
            }
            // Questions: numbered items between the questions heading and the next `## `.
            let q = required_sections(lang)[3];
            let questions = lab
                .text
                .split(&format!("\n## {q}"))
                .nth(1)
                .map(|rest| {
                    rest.split("\n## ")
                        .next()
                        .unwrap()
                        .lines()
                        .filter(|l| {
                            let d = l.chars().take_while(char::is_ascii_digit).count();
                            d > 0 && l[d..].starts_with(". ")
                        })
                        .count()
                })
                .unwrap_or(0);
            if questions < 3 {
                problems.push(format!(
                    "{lang}/{}: {questions} numbered questions, expected at least 3",
                    lab.name
                ));
            }
            if lab.blocks.iter().filter(|b| !b.info.no_run).count() == 0 {
                problems.push(format!("{lang}/{}: no runnable command block", lab.name));
            }
            for b in &lab.blocks {
                for n in &b.info.needs {
                    if !KNOWN_NEEDS.contains(&n.as_str()) {
                        problems.push(format!(
                            "{lang}/{}:{}: unknown need `{n}`",
                            lab.name, b.line
                        ));
                    }
                }
                if b.code.trim().is_empty() {
                    problems.push(format!(
                        "{lang}/{}:{}: empty command block",
                        lab.name, b.line
                    ));
                }
            }
        }
    }

    // The two languages have the same commands and the same expected output.
    let (en, ko) = (&by_lang["en"], &by_lang["ko"]);
    for (e, k) in en.iter().zip(ko.iter()) {
        if e.name != k.name {
            problems.push(format!(
                "en/{} and ko/{} should have the same file name",
                e.name, k.name
            ));
            continue;
        }
        if e.blocks.len() != k.blocks.len() {
            problems.push(format!(
                "{}: {} command blocks in en, {} in ko",
                e.name,
                e.blocks.len(),
                k.blocks.len()
            ));
            continue;
        }
        for (a, b) in e.blocks.iter().zip(k.blocks.iter()) {
            if a.info != b.info || command_lines(&a.code) != command_lines(&b.code) {
                problems.push(format!(
                    "{}: en line {} and ko line {} are different commands",
                    e.name, a.line, b.line
                ));
            }
            let ea = a.expect.as_ref().map(|(_, t)| patterns(t));
            let eb = b.expect.as_ref().map(|(_, t)| patterns(t));
            let sa: Vec<_> = a.samples.iter().map(|(_, t, k)| (t, k)).collect();
            let sb: Vec<_> = b.samples.iter().map(|(_, t, k)| (t, k)).collect();
            if ea != eb || sa != sb {
                problems.push(format!(
                    "{}: en line {} and ko line {} expect different output",
                    e.name, a.line, b.line
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "guides are incomplete:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn guide_commands_run() {
    let only = std::env::var("ISOLAB_GUIDES_ONLY").ok();
    let needs_filter: Option<Vec<String>> = std::env::var("ISOLAB_GUIDES_NEEDS")
        .ok()
        .map(|v| v.split(',').map(|n| n.trim().to_string()).collect());
    let logs = tempfile::tempdir().unwrap();
    let (mut passed, mut skipped, mut no_run) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut n = 0;
    for lab in labs("en") {
        if only.as_deref().is_some_and(|o| !lab.name.starts_with(o)) {
            continue;
        }
        let work = tempfile::tempdir().unwrap();
        for b in &lab.blocks {
            n += 1;
            let id = format!("guides::en/{}:{}", lab.name, b.line);
            if needs_filter
                .as_ref()
                .is_some_and(|f| !b.info.needs.iter().any(|n| f.contains(n)))
            {
                continue;
            }
            if b.info.no_run {
                println!("NO-RUN {id}: illustrative, not executed");
                no_run += 1;
                continue;
            }
            let missing = b
                .info
                .needs
                .iter()
                .find_map(|name| need(name).err().map(|r| (name.clone(), r)));
            if let Some((cap, reason)) = missing {
                assert!(!testing::require(
                    &id,
                    &cap,
                    Err(format!("{cap}: {reason}"))
                ));
                skipped += 1;
                continue;
            }
            let timeout = Duration::from_secs(b.info.timeout.unwrap_or(DEFAULT_TIMEOUT_S));
            let t0 = Instant::now();
            let (ran, output) = run_block(&b.code, work.path(), logs.path(), n, timeout);
            let secs = t0.elapsed().as_secs_f64();
            let verdict = match ran {
                Ran::Failed(why) => Err(why),
                Ran::Ok => match &b.expect {
                    Some((line, expect)) => check_output(expect, &output)
                        .map_err(|p| format!("expected output (line {line}) not found: `{p}`")),
                    None => Ok(()),
                }
                .and_then(|()| {
                    b.samples.iter().try_for_each(|(line, sample, keys)| {
                        check_sample(sample, *keys, &output)
                            .map_err(|e| format!("sample (line {line}) is stale: {e}"))
                    })
                }),
            };
            match verdict {
                Ok(()) => {
                    println!("PASS {id} ({secs:.1} s)");
                    passed += 1;
                }
                Err(why) => {
                    println!("FAIL {id} ({secs:.1} s): {why}\n{}", tail(&output, 25));
                    failures.push(format!("{id}: {why}"));
                }
            }
        }
    }
    println!(
        "guide blocks: {passed} passed, {skipped} skipped, {no_run} not run (illustrative), {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "guide blocks failed:\n  {}",
        failures.join("\n  ")
    );
    assert!(
        passed + skipped + no_run > 0 || only.is_some(),
        "no guide blocks found"
    );
}

// ------------------------------------------------------- the checker itself

#[test]
fn checker_matches_loosely_and_in_order() {
    let out = "PID   USER   COMMAND\n    1 root   ps\nhostname: lab\nboot: 2.417 ms to the ready marker\n";
    assert!(check_output("1 root ps\nboot: … ms to the ready marker\n", out).is_ok());
    assert!(check_output("…\nhostname: lab\n", out).is_ok());
    // order matters
    assert_eq!(
        check_output("hostname: lab\n1 root ps\n", out),
        Err("1 root ps")
    );
    // pieces around … must all appear
    assert!(!line_matches(
        "boot: … s to the … marker",
        "boot: 2 ms to the ready"
    ));
    assert!(line_matches("a…b…c", "xxaYYbZZc"));
    assert!(!line_matches("a…b", "ba"));
}

#[test]
fn samples_are_checked_by_their_labels_and_marks() {
    let sample = "metric  unit  native\nboot time  ms  4.24 ±80%\nsyscall / VM exit  ns  230  55326 ±12%†\n† not like for like.\nNot measured: crun\n";
    let fresh = "metric unit native vm-tiny\nboot time ms 3.9 ±12%\nsyscall / VM exit ns 250 60000 ±9%†\n† not like for like.\n";
    assert_eq!(sample_key("boot time  ms  4.24 ±80%"), "boot time ms");
    assert_eq!(sample_key("12 34"), "");
    assert!(check_sample(sample, Some(4), fresh).is_ok());
    // a host-dependent line is checked unless `keys=` stops before it
    assert!(check_sample(sample, None, fresh).is_err());
    // a mark that disappeared from its row fails
    let unmarked = fresh.replace("±9%†", "±9%");
    let e = check_sample(sample, Some(4), &unmarked).unwrap_err();
    assert!(e.contains("syscall / VM exit ns") && e.contains('†'), "{e}");
    // a label that is gone fails
    assert!(check_sample(sample, Some(2), "metric unit native\n").is_err());
}

#[test]
fn info_strings_parse() {
    let i = parse_info("sh {needs=root,kvm timeout=300}").unwrap();
    assert_eq!(i.lang, "sh");
    assert_eq!(i.needs, ["root", "kvm"]);
    assert_eq!(i.timeout, Some(300));
    assert!(parse_info("sh {no-run}").unwrap().no_run);
    assert!(parse_info("text {sample}").unwrap().sample);
    assert_eq!(parse_info("text {sample keys=3}").unwrap().keys, Some(3));
    assert!(parse_info("text {sample keys=x}").is_err());
    assert!(parse_info("sh {needs=root").is_err());
    assert!(parse_info("sh {bogus}").is_err());
    assert_eq!(parse_info("text").unwrap().lang, "text");
}

#[test]
fn fences_pair_commands_with_their_output() {
    let md = "x\n```sh {needs=root}\necho hi\n```\nprose\n```text\nhi\n```\n\n```sh\ntrue\n```\n```text {sample}\none run\n```\n```c\nint x;\n```\n```text\norphan\n```\n";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("01-x.md");
    fs::write(&p, md).unwrap();
    let lab = parse_lab(&p).unwrap();
    assert_eq!(lab.blocks.len(), 2);
    assert_eq!(lab.blocks[0].info.needs, ["root"]);
    assert_eq!(lab.blocks[0].expect.as_ref().unwrap().1, "hi\n");
    assert!(lab.blocks[1].expect.is_none());
    assert_eq!(lab.blocks[1].samples.len(), 1);
    assert_eq!(lab.blocks[1].samples[0].1, "one run\n");
    assert!(fences("```sh\nunclosed\n").is_err());
    assert_eq!(
        command_lines("# comment\necho a\n#!/bin/sh\n"),
        ["echo a", "#!/bin/sh"]
    );
}

#[test]
fn unknown_needs_are_refused() {
    assert!(need("no-such-thing").is_err());
    assert!(need("slow").is_err() || std::env::var("ISOLAB_GUIDES_SLOW").as_deref() == Ok("1"));
}
