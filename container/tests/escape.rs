//! The container escape suite: attempts to get out of the container, made
//! from inside it with busybox and a small static helper
//! (`escape_support/helper.c`, compiled with `gcc -static` at test time).
//! Every attempt is expected to be stopped.
//!
//! The suite can fail: `weakened_specs_let_the_attempts_through` removes one
//! isolation at a time (no seccomp filter, all capabilities, writable
//! `/proc/sys` or `/sys`, no masked paths, host network or IPC namespace, no
//! pids or memory limit) and asserts that the attempts it guards then get
//! through. `ISOLAB_TEST_WEAKEN=seccomp+caps cargo test -p container --test escape`
//! runs the whole suite that way (names: see `Weaken::name`), and the
//! attempts that isolation stops fail.
//!
//! `escape_table_is_current` regenerates `guides/{en,ko}/escape-table.md`
//! from a run of every attempt when `ISOLAB_WRITE_ESCAPE_TABLE=1`, and
//! otherwise checks that the committed table is what this run produced.
#![allow(clippy::unwrap_used)] // a test (or bench) fails by panicking

mod escape_support;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use escape_support::{
    Env, HostSleeper, Verdict, Weaken, host_interface, host_marker, hostile, ready,
};

/// One escape attempt.
struct Attempt {
    id: &'static str,
    /// What is tried, in English and Korean.
    what: [&'static str; 2],
    /// What stops it.
    stopped_by: [&'static str; 2],
    /// The weakening under which the attempt must get through.
    proof: Option<Weaken>,
    /// A host capability the attempt needs to mean anything.
    needs: fn() -> Result<(), String>,
    run: fn(&Env) -> Verdict,
}

fn always() -> Result<(), String> {
    Ok(())
}

fn unique() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Opens `path` without `O_CLOEXEC`, as a careless runtime would leave it.
fn open_inheritable(path: &Path) -> OwnedFd {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; the fd returned is owned by nobody else.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0, "open {}", path.display());
    // SAFETY: fd was just opened and is owned here.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn script_for_devices(kind: &str, maj: u32, min: u32) -> String {
    format!(
        "res=''; for d in /dev /tmp /dev/shm; do \
           r=$(/bin/esc mknod-open $d/esc-node {kind} {maj} {min}); \
           case \"$r\" in escaped*) echo \"escaped $r in $d\"; exit 0;; esac; \
           res=\"$res$d: ${{r#blocked }}; \"; \
         done; echo \"blocked ${{res%; }}\""
    )
}

fn dev_kvm() -> Result<(), String> {
    if Path::new("/dev/kvm").exists() {
        Ok(())
    } else {
        Err("the host has no /dev/kvm to copy".into())
    }
}

fn root_device() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata("/").unwrap().dev();
    (libc::major(dev), libc::minor(dev))
}

const ATTEMPTS: &[Attempt] = &[
    Attempt {
        id: "see_host_processes",
        what: [
            "find a host process in `/proc` (by its unique command line or its pid)",
            "`/proc`에서 호스트 프로세스 찾기 (고유한 명령줄 또는 pid로)",
        ],
        stopped_by: [
            "PID namespace and the container's own `/proc`",
            "PID 네임스페이스와 컨테이너 전용 `/proc`",
        ],
        proof: None,
        needs: always,
        run: |env| {
            let s = HostSleeper::start();
            let (a, b) = s.mark.split_once('.').unwrap();
            // `[.]` keeps grep from matching its own command line.
            env.verdict(&env.sh(&format!(
                "if grep -qa '{a}[.]{b}' /proc/[0-9]*/cmdline || [ -e /proc/{pid} ]; \
                 then echo escaped host process visible; \
                 else echo blocked host process absent from /proc; fi",
                pid = s.child.id()
            )))
        },
    },
    Attempt {
        id: "signal_host_process",
        what: [
            "`kill -9` a host process by its host pid",
            "호스트 pid로 호스트 프로세스에 `kill -9`",
        ],
        stopped_by: ["PID namespace", "PID 네임스페이스"],
        proof: None,
        needs: always,
        run: |env| {
            let mut s = HostSleeper::start();
            let v = env.verdict(&env.sh(&format!(
                "kill -9 {} 2>/dev/null && echo escaped signal sent \
                 || echo blocked kill: no such process",
                s.child.id()
            )));
            if !s.alive() {
                return Verdict::Escaped("the host process was killed".into());
            }
            v
        },
    },
    Attempt {
        id: "dotdot_after_pivot_root",
        what: [
            "`cd ..` past `/` to a host file",
            "`/` 위로 `cd ..` 하여 호스트 파일에 닿기",
        ],
        stopped_by: [
            "`pivot_root` with the old root detached",
            "`pivot_root` 후 이전 루트 분리",
        ],
        proof: None,
        needs: always,
        run: |env| {
            let (_d, marker) = host_marker();
            env.verdict(&env.sh(&format!(
                "cd / && cd ../../../../.. && \
                 if [ -e {m} ]; then echo escaped host marker reachable; \
                 elif [ \"$(pwd)\" != / ]; then echo escaped left the root: $(pwd); \
                 else echo blocked '..' of / is /; fi",
                m = marker.display()
            )))
        },
    },
    Attempt {
        id: "proc_root_and_cwd_links",
        what: [
            "reach a host file through `/proc/<pid>/root` or `/proc/<pid>/cwd`",
            "`/proc/<pid>/root` 또는 `/proc/<pid>/cwd`를 통해 호스트 파일에 닿기",
        ],
        stopped_by: [
            "PID namespace (no host pid to follow) and `pivot_root`",
            "PID 네임스페이스(따라갈 호스트 pid 없음)와 `pivot_root`",
        ],
        proof: None,
        needs: always,
        run: |env| {
            let (_d, marker) = host_marker();
            env.verdict(&env.sh(&format!(
                "for p in /proc/[0-9]* /proc/self; do \
                   for l in root cwd; do \
                     if [ -e $p/$l{m} ]; then echo escaped via $p/$l; exit 0; fi; \
                   done; \
                 done; echo blocked no link leads to the host",
                m = marker.display()
            )))
        },
    },
    Attempt {
        id: "chroot_breakout",
        what: [
            "classic chroot breakout: `chroot` into a subdirectory, `chdir(\"..\")` ×64, `chroot(\".\")`",
            "고전적 chroot 탈출: 하위 디렉터리로 `chroot`, `chdir(\"..\")` ×64, `chroot(\".\")`",
        ],
        stopped_by: [
            "`pivot_root` (the namespace's root is the container root; chroot cannot climb above it)",
            "`pivot_root` (네임스페이스의 루트가 컨테이너 루트이므로 chroot로 그 위에 오를 수 없음)",
        ],
        proof: None,
        needs: always,
        run: |env| {
            let (_d, marker) = host_marker();
            env.verdict(&env.esc(&["chroot-escape", &marker.to_string_lossy()]))
        },
    },
    Attempt {
        id: "mount_a_filesystem",
        what: ["`mount(2)` a tmpfs", "`mount(2)`로 tmpfs 마운트"],
        stopped_by: [
            "seccomp (`mount` denied) and no `CAP_SYS_ADMIN`",
            "seccomp(`mount` 거부)와 `CAP_SYS_ADMIN` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["mount-tmpfs", "/tmp"])),
    },
    Attempt {
        id: "remount_proc_sys_rw",
        what: [
            "remount the read-only `/proc/sys` read-write",
            "읽기 전용 `/proc/sys`를 읽기-쓰기로 다시 마운트",
        ],
        stopped_by: [
            "seccomp (`mount` denied) and no `CAP_SYS_ADMIN`",
            "seccomp(`mount` 거부)와 `CAP_SYS_ADMIN` 없음",
        ],
        proof: None,
        needs: always,
        run: |env| {
            env.verdict(&env.sh("mount -o remount,bind,rw /proc/sys 2>/dev/null \
                 && echo escaped remounted || echo blocked remount refused"))
        },
    },
    Attempt {
        id: "unshare_user_namespace",
        what: [
            "`unshare(CLONE_NEWUSER)` to become root of a new user namespace",
            "`unshare(CLONE_NEWUSER)`로 새 사용자 네임스페이스의 root 되기",
        ],
        stopped_by: ["seccomp (`unshare` denied)", "seccomp(`unshare` 거부)"],
        proof: Some(Weaken::Seccomp),
        needs: always,
        run: |env| env.verdict(&env.esc(&["unshare-user"])),
    },
    Attempt {
        id: "setns_back_out",
        what: [
            "`setns` into a host namespace through an fd the runtime held open, or `/proc/1/ns/*`",
            "런타임이 열어 둔 fd나 `/proc/1/ns/*`를 통해 호스트 네임스페이스로 `setns`",
        ],
        stopped_by: [
            "fds closed before exec (`close_range`); no host process to take namespaces from (PID namespace); seccomp denies `setns` anyway",
            "exec 전에 fd 닫기(`close_range`); 네임스페이스를 가져올 호스트 프로세스가 보이지 않음(PID 네임스페이스); 어차피 seccomp가 `setns` 거부",
        ],
        proof: None,
        needs: always,
        run: |env| {
            let _ns = open_inheritable(Path::new("/proc/self/ns/mnt"));
            env.verdict(&env.esc(&["setns-out"]))
        },
    },
    Attempt {
        id: "write_proc_sys",
        what: [
            "write a host-wide sysctl (`/proc/sys/vm/swappiness`, its current value)",
            "호스트 전역 sysctl 쓰기 (`/proc/sys/vm/swappiness`, 현재 값 그대로)",
        ],
        stopped_by: [
            "`/proc/sys` bind-mounted read-only",
            "`/proc/sys`를 읽기 전용으로 바인드 마운트",
        ],
        proof: Some(Weaken::ReadonlyPaths),
        needs: always,
        run: |env| {
            env.verdict(&env.sh(
                "v=$(cat /proc/sys/vm/swappiness); /bin/esc write-file /proc/sys/vm/swappiness $v",
            ))
        },
    },
    Attempt {
        id: "write_sys",
        what: [
            "write a host-wide `/sys` knob (`transparent_hugepage/enabled`, its current value)",
            "호스트 전역 `/sys` 설정 쓰기 (`transparent_hugepage/enabled`, 현재 값 그대로)",
        ],
        stopped_by: ["`/sys` mounted read-only", "`/sys`를 읽기 전용으로 마운트"],
        proof: Some(Weaken::SysRw),
        needs: || {
            if Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
                Ok(())
            } else {
                Err("the host kernel has no transparent_hugepage/enabled".into())
            }
        },
        run: |env| {
            env.verdict(&env.sh("f=/sys/kernel/mm/transparent_hugepage/enabled; \
                 v=$(sed 's/.*\\[\\(.*\\)\\].*/\\1/' $f); /bin/esc write-file $f $v"))
        },
    },
    Attempt {
        id: "sysrq_trigger",
        what: [
            "open `/proc/sysrq-trigger` for writing (an empty write)",
            "`/proc/sysrq-trigger`를 쓰기용으로 열기 (빈 쓰기)",
        ],
        stopped_by: [
            "`/proc/sysrq-trigger` bind-mounted read-only",
            "`/proc/sysrq-trigger`를 읽기 전용으로 바인드 마운트",
        ],
        proof: None,
        needs: || {
            if Path::new("/proc/sysrq-trigger").exists() {
                Ok(())
            } else {
                Err("the host kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ off)".into())
            }
        },
        run: |env| env.verdict(&env.esc(&["write-file", "/proc/sysrq-trigger", ""])),
    },
    Attempt {
        id: "read_host_timers",
        what: [
            "read the host's timers and their owners' pids from `/proc/timer_list`",
            "`/proc/timer_list`에서 호스트 타이머와 소유 pid 읽기",
        ],
        stopped_by: [
            "masked path (`/dev/null` bound over it)",
            "가려진 경로 (`/dev/null`을 위에 바인드)",
        ],
        proof: Some(Weaken::MaskedPaths),
        needs: || {
            if Path::new("/proc/timer_list").exists() {
                Ok(())
            } else {
                Err("the host kernel has no /proc/timer_list".into())
            }
        },
        run: |env| {
            env.verdict(&env.sh("n=$(cat /proc/timer_list 2>/dev/null | wc -c); \
                 if [ \"$n\" -gt 0 ]; then echo escaped $n bytes of host timers; \
                 else echo blocked /proc/timer_list reads empty; fi"))
        },
    },
    Attempt {
        id: "read_kernel_memory",
        what: [
            "read kernel memory from `/proc/kcore`",
            "`/proc/kcore`에서 커널 메모리 읽기",
        ],
        stopped_by: [
            "masked path, and no `CAP_SYS_RAWIO`",
            "가려진 경로와 `CAP_SYS_RAWIO` 없음",
        ],
        proof: None,
        needs: always,
        run: |env| {
            env.verdict(
                &env.sh("n=$(head -c 4096 /proc/kcore 2>/dev/null | wc -c); \
                 if [ \"$n\" -gt 0 ]; then echo escaped $n bytes of kernel memory; \
                 else echo blocked /proc/kcore reads empty; fi"),
            )
        },
    },
    Attempt {
        id: "load_kernel_module",
        what: [
            "load a kernel module (`finit_module`)",
            "커널 모듈 적재 (`finit_module`)",
        ],
        stopped_by: [
            "seccomp (`init_module`/`finit_module` denied) and no `CAP_SYS_MODULE`",
            "seccomp(`init_module`/`finit_module` 거부)와 `CAP_SYS_MODULE` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["finit-module"])),
    },
    Attempt {
        id: "ptrace_the_runtime",
        what: [
            "`ptrace` the runtime (by its host pid) or any process",
            "런타임(호스트 pid로)이나 아무 프로세스를 `ptrace`",
        ],
        stopped_by: [
            "seccomp (`ptrace` denied); the runtime is outside the PID namespace",
            "seccomp(`ptrace` 거부); 런타임은 PID 네임스페이스 밖에 있음",
        ],
        proof: Some(Weaken::Seccomp),
        needs: always,
        run: |env| {
            env.verdict(&env.sh(&format!(
                "a=$(/bin/esc ptrace-pid {}); b=$(/bin/esc ptrace-child); \
                 case \"$a$b\" in *escaped*) echo \"escaped $a / $b\";; \
                 *) echo \"blocked runtime: ${{a#blocked }}; own child: ${{b#blocked }}\";; esac",
                std::process::id()
            )))
        },
    },
    Attempt {
        id: "perf_the_whole_host",
        what: [
            "system-wide `perf_event_open` (observe every CPU of the host)",
            "시스템 전체 `perf_event_open` (호스트의 모든 CPU 관찰)",
        ],
        stopped_by: [
            "seccomp (`perf_event_open` denied) and no `CAP_PERFMON`",
            "seccomp(`perf_event_open` 거부)와 `CAP_PERFMON` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["perf-system-wide"])),
    },
    Attempt {
        id: "raw_socket_on_a_host_interface",
        what: [
            "open a raw packet socket and bind it to a host interface",
            "raw 패킷 소켓을 열어 호스트 인터페이스에 바인드",
        ],
        stopped_by: [
            "network namespace (only `lo` exists inside; `CAP_NET_RAW` is in the default set)",
            "네트워크 네임스페이스 (안에는 `lo`만 존재; `CAP_NET_RAW`는 기본 집합에 있음)",
        ],
        proof: Some(Weaken::NetHost),
        needs: || {
            host_interface()
                .map(|_| ())
                .ok_or_else(|| "the host has no interface but lo".into())
        },
        run: |env| {
            let ifname = host_interface().unwrap();
            env.verdict(&env.esc(&["raw-bind", &ifname]))
        },
    },
    Attempt {
        id: "host_abstract_unix_socket",
        what: [
            "connect to a host service's abstract Unix socket",
            "호스트 서비스의 추상 유닉스 소켓에 연결",
        ],
        stopped_by: [
            "network namespace (abstract sockets belong to it)",
            "네트워크 네임스페이스 (추상 소켓은 네임스페이스에 속함)",
        ],
        proof: Some(Weaken::NetHost),
        needs: always,
        run: |env| {
            let name = format!("isolab-escape-{}-{}", std::process::id(), unique());
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let _listener = UnixListener::bind_addr(&addr).unwrap();
            env.verdict(&env.esc(&["abstract-connect", &name]))
        },
    },
    Attempt {
        id: "host_sysv_shared_memory",
        what: [
            "attach a host SysV shared memory segment by its key",
            "키로 호스트 SysV 공유 메모리 세그먼트 붙이기",
        ],
        stopped_by: ["IPC namespace", "IPC 네임스페이스"],
        proof: Some(Weaken::Ipc),
        needs: always,
        run: |env| {
            let key = 0x1501_0000 | (std::process::id() & 0xfff) << 4 | (unique() & 0xf);
            // SAFETY: integer arguments only.
            let id = unsafe {
                libc::shmget(
                    key as libc::key_t,
                    4096,
                    libc::IPC_CREAT | libc::IPC_EXCL | 0o600,
                )
            };
            assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
            struct Rm(libc::c_int);
            impl Drop for Rm {
                fn drop(&mut self) {
                    // SAFETY: removing the segment this test created.
                    unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
                }
            }
            let _rm = Rm(id);
            env.verdict(&env.esc(&["shmget", &format!("{key:#x}")]))
        },
    },
    Attempt {
        id: "mknod_dev_kvm",
        what: [
            "`mknod` `/dev/kvm` (10:232) in `/dev`, `/tmp` and `/dev/shm` and open it",
            "`/dev`, `/tmp`, `/dev/shm`에 `/dev/kvm`(10:232)을 `mknod`하고 열기",
        ],
        stopped_by: [
            "the device cgroup (`mknod` refused), and `nodev` on every writable mount",
            "장치 cgroup(`mknod` 거부)과 쓰기 가능한 모든 마운트의 `nodev`",
        ],
        proof: None,
        needs: always,
        run: |env| env.verdict(&env.sh(&script_for_devices("c", 10, 232))),
    },
    Attempt {
        id: "mknod_dev_mem",
        what: [
            "`mknod` `/dev/mem` (1:1) and open it",
            "`/dev/mem`(1:1)을 `mknod`하고 열기",
        ],
        stopped_by: [
            "the device cgroup (`mknod` refused), and `nodev` on every writable mount",
            "장치 cgroup(`mknod` 거부)과 쓰기 가능한 모든 마운트의 `nodev`",
        ],
        proof: None,
        needs: always,
        run: |env| env.verdict(&env.sh(&script_for_devices("c", 1, 1))),
    },
    Attempt {
        id: "mknod_host_root_disk",
        what: [
            "`mknod` the block device holding the host's `/` and open it",
            "호스트 `/`가 있는 블록 장치를 `mknod`하고 열기",
        ],
        stopped_by: [
            "the device cgroup (`mknod` refused), and `nodev` on every writable mount",
            "장치 cgroup(`mknod` 거부)과 쓰기 가능한 모든 마운트의 `nodev`",
        ],
        proof: None,
        needs: || {
            if root_device().0 == 0 {
                Err("the host's / is not on a block device".into())
            } else {
                Ok(())
            }
        },
        run: |env| {
            let (maj, min) = root_device();
            env.verdict(&env.sh(&script_for_devices("b", maj, min)))
        },
    },
    Attempt {
        id: "exceed_the_memory_limit",
        what: [
            "allocate and touch 64 MiB under a 16 MiB limit",
            "16 MiB 제한 아래에서 64 MiB 할당하고 사용",
        ],
        stopped_by: [
            "memory cgroup (OOM kill inside the container)",
            "메모리 cgroup (컨테이너 안에서 OOM kill)",
        ],
        proof: Some(Weaken::Memory),
        needs: hostcaps::cgroup::memory_controller_usable,
        run: |env| {
            let spec = env
                .spec(
                    "/bin/dd",
                    &["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                )
                .memory(16 << 20);
            let r = env.run(spec);
            if r.oom_killed {
                Verdict::Blocked("OOM-killed at the 16 MiB limit".into())
            } else if r.success() {
                Verdict::Escaped("64 MiB allocated".into())
            } else {
                panic!("dd neither finished nor was OOM-killed: {r:?}")
            }
        },
    },
    Attempt {
        id: "fork_bomb",
        what: [
            "start 64 processes under a pids limit of 16",
            "pids 제한 16 아래에서 프로세스 64개 시작",
        ],
        stopped_by: ["pids cgroup", "pids cgroup"],
        proof: Some(Weaken::Pids),
        needs: || hostcaps::cgroup::controller_usable("pids"),
        run: |env| {
            let spec = env
                .sh("i=0; while [ $i -lt 64 ]; do sleep 5 & i=$((i+1)); done; echo spawned")
                .pids(Some(16));
            let r = env.run(spec);
            let err = String::from_utf8_lossy(&r.stderr);
            if err.contains("can't fork") && r.stats.pids_limit_hits.unwrap_or(0) > 0 {
                Verdict::Blocked("fork refused at pids.max = 16".into())
            } else if String::from_utf8_lossy(&r.stdout).contains("spawned") {
                Verdict::Escaped("64 processes started".into())
            } else {
                panic!("unexpected fork bomb outcome: {r:?}")
            }
        },
    },
    Attempt {
        id: "change_the_host_hostname",
        what: ["`sethostname`", "`sethostname`"],
        stopped_by: [
            "UTS namespace and no `CAP_SYS_ADMIN`; the host's hostname is checked unchanged",
            "UTS 네임스페이스와 `CAP_SYS_ADMIN` 없음; 호스트 hostname이 그대로인지 확인",
        ],
        proof: None,
        needs: always,
        run: |env| {
            let before = nix::unistd::gethostname().unwrap();
            let v = env.verdict(&env.esc(&["sethostname", "isolab-escaped"]));
            if nix::unistd::gethostname().unwrap() != before {
                return Verdict::Escaped("the host's hostname changed".into());
            }
            // Renaming its own UTS namespace (possible with CAP_SYS_ADMIN) is no escape.
            match v {
                Verdict::Escaped(_) => {
                    Verdict::Blocked("only the container's hostname changed".into())
                }
                other => other,
            }
        },
    },
    Attempt {
        id: "inherit_a_host_fd",
        what: [
            "use a host directory fd the runtime's process had open without `O_CLOEXEC`",
            "런타임 프로세스가 `O_CLOEXEC` 없이 열어 둔 호스트 디렉터리 fd 사용",
        ],
        stopped_by: [
            "every fd above 2 closed before exec (`close_range`)",
            "exec 전에 2보다 큰 모든 fd 닫기 (`close_range`)",
        ],
        proof: None,
        needs: always,
        run: |env| {
            let (d, _marker) = host_marker();
            let _fd = open_inheritable(d.path());
            env.verdict(&env.esc(&["fds"]))
        },
    },
    Attempt {
        id: "leave_the_cgroup",
        what: [
            "mount the cgroup filesystem to move out of the container's cgroup",
            "cgroup 파일시스템을 마운트해 컨테이너 cgroup 밖으로 이동",
        ],
        stopped_by: [
            "seccomp (`mount` denied), no `CAP_SYS_ADMIN`; cgroup namespace shows only `/`",
            "seccomp(`mount` 거부), `CAP_SYS_ADMIN` 없음; cgroup 네임스페이스는 `/`만 보여 줌",
        ],
        proof: None,
        needs: always,
        run: |env| {
            env.verdict(&env.sh(
                "mkdir -p /tmp/cg; \
                 if mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null \
                    || mount -t cgroup2 cgroup /tmp/cg 2>/dev/null; \
                 then echo escaped cgroup filesystem mounted; \
                 elif grep -qv ':/$' /proc/self/cgroup; then echo escaped host cgroup path visible; \
                 else echo blocked mount refused, every cgroup path is /; fi",
            ))
        },
    },
    Attempt {
        id: "host_keyrings",
        what: [
            "reach the kernel keyrings (`keyctl`)",
            "커널 키링 접근 (`keyctl`)",
        ],
        stopped_by: [
            "seccomp (`keyctl`, `add_key`, `request_key` denied)",
            "seccomp(`keyctl`, `add_key`, `request_key` 거부)",
        ],
        proof: Some(Weaken::Seccomp),
        needs: always,
        run: |env| env.verdict(&env.esc(&["keyctl"])),
    },
    Attempt {
        id: "bpf",
        what: ["create a BPF map (`bpf`)", "BPF 맵 생성 (`bpf`)"],
        stopped_by: [
            "seccomp (`bpf` denied) and no `CAP_BPF`/`CAP_SYS_ADMIN`",
            "seccomp(`bpf` 거부)와 `CAP_BPF`/`CAP_SYS_ADMIN` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["bpf"])),
    },
    Attempt {
        id: "open_by_handle_shocker",
        what: [
            "`name_to_handle_at` + `open_by_handle_at` (the \"shocker\" escape)",
            "`name_to_handle_at` + `open_by_handle_at` (\"shocker\" 탈출)",
        ],
        stopped_by: [
            "seccomp (both denied) and no `CAP_DAC_READ_SEARCH`",
            "seccomp(둘 다 거부)와 `CAP_DAC_READ_SEARCH` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["open-by-handle"])),
    },
    Attempt {
        id: "raw_port_io",
        what: [
            "get raw I/O port access (`ioperm`)",
            "raw I/O 포트 접근 얻기 (`ioperm`)",
        ],
        stopped_by: [
            "seccomp (`ioperm`/`iopl` denied) and no `CAP_SYS_RAWIO`",
            "seccomp(`ioperm`/`iopl` 거부)와 `CAP_SYS_RAWIO` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["ioperm"])),
    },
    Attempt {
        id: "reboot",
        what: [
            "`reboot(2)` (with a wrong magic, so it can never reboot)",
            "`reboot(2)` (잘못된 magic 값이라 실제 재부팅은 불가)",
        ],
        stopped_by: [
            "seccomp (`reboot` denied) and no `CAP_SYS_BOOT`",
            "seccomp(`reboot` 거부)와 `CAP_SYS_BOOT` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["reboot-bad-magic"])),
    },
    Attempt {
        id: "read_the_kernel_log",
        what: [
            "read the host's kernel log (`syslog(2)`, as `dmesg` does)",
            "호스트 커널 로그 읽기 (`dmesg`처럼 `syslog(2)`)",
        ],
        stopped_by: [
            "seccomp (`syslog` denied) and no `CAP_SYSLOG`",
            "seccomp(`syslog` 거부)와 `CAP_SYSLOG` 없음",
        ],
        proof: Some(Weaken::SeccompAndCaps),
        needs: always,
        run: |env| env.verdict(&env.esc(&["syslog"])),
    },
    Attempt {
        id: "symlinked_mount_parent_absolute",
        what: [
            "a root whose `/data` is an absolute symlink to a host directory, with a mount at `/data/esc`",
            "`/data`가 호스트 디렉터리로 가는 절대 심볼릭 링크인 루트에 `/data/esc` 마운트",
        ],
        stopped_by: [
            "every path resolved inside the root (`openat2` `RESOLVE_IN_ROOT`)",
            "모든 경로를 루트 안에서 해석 (`openat2` `RESOLVE_IN_ROOT`)",
        ],
        proof: Some(Weaken::PathsInRoot),
        needs: always,
        run: |env| hostile::symlinked_parent(env, false),
    },
    Attempt {
        id: "symlinked_mount_parent_relative",
        what: [
            "a root whose `/data` is a relative `../../…` symlink to a host directory, with a mount at `/data/esc`",
            "`/data`가 호스트 디렉터리로 가는 상대(`../../…`) 심볼릭 링크인 루트에 `/data/esc` 마운트",
        ],
        stopped_by: [
            "`..` stops at the root (`RESOLVE_IN_ROOT`)",
            "`..`는 루트에서 멈춤 (`RESOLVE_IN_ROOT`)",
        ],
        proof: Some(Weaken::PathsInRoot),
        needs: always,
        run: |env| hostile::symlinked_parent(env, true),
    },
    Attempt {
        id: "symlinked_mount_last_absolute",
        what: [
            "a file mount at `/esc-file`, itself a dangling absolute symlink to a host path",
            "호스트 경로로 가는 끊긴 절대 심볼릭 링크 `/esc-file`에 파일 마운트",
        ],
        stopped_by: [
            "the last component resolved inside the root too; new entries made with `O_EXCL` in a resolved parent",
            "마지막 구성 요소도 루트 안에서 해석; 새 항목은 해석된 부모에서 `O_EXCL`로 생성",
        ],
        proof: Some(Weaken::PathsInRoot),
        needs: always,
        run: |env| hostile::symlinked_last(env, false),
    },
    Attempt {
        id: "symlinked_mount_last_relative",
        what: [
            "a file mount at `/esc-file`, a dangling relative `../../…` symlink to a host path",
            "호스트 경로로 가는 끊긴 상대(`../../…`) 심볼릭 링크 `/esc-file`에 파일 마운트",
        ],
        stopped_by: [
            "the last component resolved inside the root too",
            "마지막 구성 요소도 루트 안에서 해석",
        ],
        proof: Some(Weaken::PathsInRoot),
        needs: always,
        run: |env| hostile::symlinked_last(env, true),
    },
    Attempt {
        id: "fifo_mount_target",
        what: [
            "a mount target that is a FIFO, to stall set-up past the timeout",
            "마운트 대상이 FIFO라 설정 단계를 타임아웃 너머까지 멈추게 하기",
        ],
        stopped_by: [
            "targets opened with `O_PATH`, which never blocks",
            "대상을 막히지 않는 `O_PATH`로 열기",
        ],
        proof: Some(Weaken::PathsInRoot),
        needs: always,
        run: hostile::fifo_target,
    },
    Attempt {
        id: "symlinked_proc",
        what: [
            "a root whose `/proc` is a symlink, to run with no `/proc` of its own and no masked paths",
            "`/proc`가 심볼릭 링크인 루트로, 자체 `/proc`와 가림 경로 없이 실행하기",
        ],
        stopped_by: [
            "`/proc`, `/sys` and `/dev` refused unless plain directories",
            "`/proc`, `/sys`, `/dev`가 일반 디렉터리가 아니면 거부",
        ],
        proof: Some(Weaken::PathsInRoot),
        needs: always,
        run: hostile::symlinked_proc,
    },
    Attempt {
        id: "uid_overflow",
        what: [
            "`process.user.uid` 4294967295 (`(uid_t)-1`), to keep running as root",
            "`process.user.uid` 4294967295(`(uid_t)-1`)로 root 그대로 실행하기",
        ],
        stopped_by: [
            "ids above 2^31 − 1 refused, as runc does",
            "runc처럼 2^31 − 1보다 큰 id 거부",
        ],
        proof: Some(Weaken::Ids),
        needs: always,
        run: hostile::uid_overflow,
    },
    Attempt {
        id: "mknod_then_open_from_host",
        what: [
            "`mknod` a 0666 `/dev/kvm` copy in the root (a host directory), then open it from the host",
            "루트(호스트 디렉터리)에 0666 `/dev/kvm` 사본을 `mknod`한 뒤 호스트에서 열기",
        ],
        stopped_by: [
            "the device cgroup (OCI default allowlist: v1 `devices`, v2 BPF program)",
            "장치 cgroup (OCI 기본 허용 목록: v1 `devices`, v2 BPF 프로그램)",
        ],
        proof: Some(Weaken::Devices),
        needs: dev_kvm,
        run: hostile::mknod_host_visible,
    },
    Attempt {
        id: "output_flood",
        what: [
            "print 32 MiB to make the runtime hold it all in memory",
            "32 MiB를 출력해 런타임이 모두 메모리에 쥐게 하기",
        ],
        stopped_by: [
            "a fixed capture cap; the rest is read and counted, not kept",
            "고정된 캡처 상한; 나머지는 읽고 세기만 하고 버림",
        ],
        proof: Some(Weaken::CaptureLimit),
        needs: always,
        run: hostile::output_flood,
    },
    Attempt {
        id: "cgroup_outside_the_caller",
        what: [
            "get groups outside the caller's own cgroup (and its limits)",
            "호출자 자신의 cgroup(과 그 제한) 밖에 그룹 얻기",
        ],
        stopped_by: [
            "groups made below the caller's cgroup in each hierarchy",
            "각 계층에서 호출자의 cgroup 아래에 그룹 생성",
        ],
        proof: Some(Weaken::CgroupRoot),
        needs: hostile::caller_in_a_nested_cgroup,
        run: hostile::cgroup_placement,
    },
    Attempt {
        id: "io_uring",
        what: [
            "set up an io_uring, whose requests run in kernel workers no syscall filter sees",
            "시스템 호출 필터가 보지 못하는 커널 워커에서 요청이 실행되는 io_uring 만들기",
        ],
        stopped_by: [
            "seccomp (`io_uring_setup`, `io_uring_enter`, `io_uring_register` denied)",
            "seccomp(`io_uring_setup`, `io_uring_enter`, `io_uring_register` 거부)",
        ],
        proof: Some(Weaken::Seccomp),
        needs: always,
        run: |env| env.verdict(&env.esc(&["io-uring"])),
    },
];

fn attempt(id: &str) -> &'static Attempt {
    ATTEMPTS
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("no attempt {id}"))
}

/// Runs the attempt `id` and asserts it is stopped.
fn check(id: &str) {
    let test = format!("escape::{id}");
    if !ready(&test) {
        return;
    }
    let a = attempt(id);
    if !hostcaps::testing::require(&test, id, (a.needs)()) {
        return;
    }
    let env = Env::new(None);
    match (a.run)(&env) {
        Verdict::Blocked(_) | Verdict::NotRun(_) => {}
        Verdict::Escaped(how) => panic!(
            "ESCAPE: {} got through ({how}); it should be stopped by {}",
            a.what[0], a.stopped_by[0]
        ),
    }
}

macro_rules! escape_tests {
    ($($id:ident),* $(,)?) => {
        $( #[test] fn $id() { check(stringify!($id)); } )*
        const TESTED: &[&str] = &[$(stringify!($id)),*];
    };
}

escape_tests!(
    see_host_processes,
    signal_host_process,
    dotdot_after_pivot_root,
    proc_root_and_cwd_links,
    chroot_breakout,
    mount_a_filesystem,
    remount_proc_sys_rw,
    unshare_user_namespace,
    setns_back_out,
    write_proc_sys,
    write_sys,
    sysrq_trigger,
    read_host_timers,
    read_kernel_memory,
    load_kernel_module,
    ptrace_the_runtime,
    perf_the_whole_host,
    raw_socket_on_a_host_interface,
    host_abstract_unix_socket,
    host_sysv_shared_memory,
    mknod_dev_kvm,
    mknod_dev_mem,
    mknod_host_root_disk,
    exceed_the_memory_limit,
    fork_bomb,
    change_the_host_hostname,
    inherit_a_host_fd,
    leave_the_cgroup,
    host_keyrings,
    bpf,
    open_by_handle_shocker,
    raw_port_io,
    reboot,
    read_the_kernel_log,
    symlinked_mount_parent_absolute,
    symlinked_mount_parent_relative,
    symlinked_mount_last_absolute,
    symlinked_mount_last_relative,
    fifo_mount_target,
    symlinked_proc,
    uid_overflow,
    mknod_then_open_from_host,
    output_flood,
    cgroup_outside_the_caller,
    io_uring,
);

#[test]
fn every_attempt_has_a_test_and_there_are_at_least_twenty() {
    let mut ids: Vec<&str> = ATTEMPTS.iter().map(|a| a.id).collect();
    let mut tested = TESTED.to_vec();
    ids.sort_unstable();
    tested.sort_unstable();
    assert_eq!(ids, tested);
    assert!(ids.len() >= 20, "{} attempts", ids.len());
    ids.dedup();
    assert_eq!(ids.len(), ATTEMPTS.len(), "duplicate attempt ids");
}

#[test]
fn weakened_specs_let_the_attempts_through() {
    let test = "weakened_specs_let_the_attempts_through";
    if !ready(test) {
        return;
    }
    let mut proven = 0;
    for a in ATTEMPTS {
        let Some(w) = a.proof else { continue };
        if (a.needs)().is_err() {
            continue;
        }
        let env = Env::new(Some(w));
        match (a.run)(&env) {
            Verdict::Escaped(_) => proven += 1,
            Verdict::Blocked(how) | Verdict::NotRun(how) => panic!(
                "{}: still blocked ({how}) without `{}`: the test cannot tell whether that isolation works",
                a.id,
                w.name()
            ),
        }
    }
    assert!(proven >= 10, "only {proven} attempts proven");
}

fn table(lang: usize, rows: &[(&Attempt, Verdict)]) -> String {
    let (title, intro, head) = if lang == 0 {
        (
            "# Container escape attempts",
            "Generated by `ISOLAB_WRITE_ESCAPE_TABLE=1 cargo test -p container --test escape escape_table_is_current`\n\
             from a run of `container/tests/escape.rs`; do not edit by hand. Each attempt is made from inside a\n\
             container with the runtime's default spec (busybox root, seccomp, the OCI default capabilities, all\n\
             namespaces, pids limit). *Proven by* names the isolation whose removal lets the attempt through\n\
             (`weakened_specs_let_the_attempts_through` checks it), so the test is shown able to fail.",
            "| # | attempt | stopped by | outcome | proven by |",
        )
    } else {
        (
            "# 컨테이너 탈출 시도",
            "`ISOLAB_WRITE_ESCAPE_TABLE=1 cargo test -p container --test escape escape_table_is_current`가\n\
             `container/tests/escape.rs`를 실행해 만든 표입니다. 손으로 고치지 마세요. 모든 시도는 런타임의 기본 설정\n\
             (busybox 루트, seccomp, OCI 기본 capability, 모든 네임스페이스, pids 제한)으로 띄운 컨테이너 안에서 합니다.\n\
             *증명*은 그 격리를 없애면 시도가 성공함을 보여 주는 약화 설정입니다\n\
             (`weakened_specs_let_the_attempts_through`가 확인). 그래서 이 테스트는 실패할 수 있음이 증명됩니다.",
            "| # | 시도 | 막는 장치 | 결과 | 증명 |",
        )
    };
    let (blocked, not_run) = if lang == 0 {
        ("blocked", "not run on this host")
    } else {
        ("막힘", "이 호스트에서는 실행하지 않음")
    };
    let mut s = format!("{title}\n\n{intro}\n\n{head}\n| --- | --- | --- | --- | --- |\n");
    for (i, (a, v)) in rows.iter().enumerate() {
        let outcome = match v {
            Verdict::Blocked(how) => format!("{blocked}: {how}"),
            Verdict::Escaped(how) => format!("**ESCAPED**: {how}"),
            Verdict::NotRun(why) => format!("{not_run}: {why}"),
        };
        let proof = a
            .proof
            .map_or("—".to_string(), |w| format!("`{}`", w.name()));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            i + 1,
            a.what[lang],
            a.stopped_by[lang],
            outcome.replace('|', "\\|"),
            proof
        ));
    }
    s
}

#[test]
fn escape_table_is_current() {
    let test = "escape_table_is_current";
    if !ready(test) {
        return;
    }
    if !escape_support::env_weakenings().is_empty() {
        println!("SKIP {test}: the table is only written for the unweakened spec");
        return;
    }
    let mut rows = Vec::new();
    for a in ATTEMPTS {
        let verdict = match (a.needs)() {
            Ok(()) => (a.run)(&Env::new(None)),
            Err(reason) => Verdict::NotRun(reason),
        };
        rows.push((a, verdict));
    }
    let guides = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guides");
    let write = std::env::var("ISOLAB_WRITE_ESCAPE_TABLE").is_ok_and(|v| v == "1");
    for (lang, dir) in [(0, "en"), (1, "ko")] {
        let text = table(lang, &rows);
        let path = guides.join(dir).join("escape-table.md");
        if write {
            std::fs::write(&path, &text).unwrap();
        } else {
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                committed,
                text,
                "{} is stale: rerun with ISOLAB_WRITE_ESCAPE_TABLE=1",
                path.display()
            );
        }
    }
    let escaped: Vec<&str> = rows
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Escaped(_)))
        .map(|(a, _)| a.id)
        .collect();
    assert!(escaped.is_empty(), "attempts that got through: {escaped:?}");
}
