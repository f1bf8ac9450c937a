/* isolab escape helper: one escape attempt per sub-command, run inside the
 * container by container/tests/escape.rs. Compiled at test time with
 * `gcc -static`. Every sub-command prints exactly one line:
 *   "escaped <detail>"  the attempt got through (exit 0)
 *   "blocked <detail>"  the attempt was stopped (exit 1)
 * where <detail> is deterministic (errno names, not messages), so the
 * generated escape table is stable. Exit 2 is a usage error. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

static const char *en(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static int escaped(const char *what) { printf("escaped %s\n", what); return 0; }

static int blocked(const char *what, int e) {
    printf("blocked %s: %s\n", what, en(e));
    return 1;
}

/* A syscall that only reaches the kernel's work after its permission check:
 * EPERM/EACCES means stopped, anything else means it got through. */
static int gate(const char *what, long rc) {
    int e = errno;
    if (rc >= 0) return escaped(what);
    if (e == EPERM || e == EACCES) return blocked(what, e);
    printf("escaped %s: past the permission check (%s)\n", what, en(e));
    return 0;
}

static int chroot_escape(const char *marker) {
    mkdir("/tmp/esc-jail", 0755);
    if (chroot("/tmp/esc-jail") != 0) return blocked("chroot", errno);
    /* cwd is still outside the new root: walk up and re-root there. */
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) return blocked("chroot .", errno);
    if (access(marker, F_OK) == 0) return escaped("host marker reachable");
    return blocked("host marker", errno);
}

static int mknod_open(const char *path, const char *type, int maj, int min) {
    mode_t t = type[0] == 'b' ? S_IFBLK : S_IFCHR;
    unlink(path);
    if (mknod(path, t | 0600, makedev(maj, min)) != 0) return blocked("mknod", errno);
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    int e = errno;
    unlink(path);
    if (fd >= 0) { close(fd); return escaped("device opened"); }
    return blocked("open", e);
}

static int ptrace_pid(pid_t pid) {
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) == 0) {
        waitpid(pid, 0, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        return escaped("attached");
    }
    return blocked("ptrace attach", errno);
}

static int ptrace_child(void) {
    pid_t c = fork();
    if (c == 0) { pause(); _exit(0); }
    int r = ptrace_pid(c);
    kill(c, SIGKILL);
    waitpid(c, 0, 0);
    return r;
}

static int raw_bind(const char *ifname) {
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (s < 0) return blocked("raw socket", errno);
    if (setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname) + 1) != 0)
        return blocked("raw socket on the host interface", errno);
    return escaped("raw socket bound to the host interface");
}

static int abstract_connect(const char *name) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    if (n + 1 > sizeof a.sun_path) return 2;
    memcpy(a.sun_path + 1, name, n);
    if (connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n) == 0)
        return escaped("connected to the host's abstract socket");
    return blocked("connect", errno);
}

static int shm(const char *key) {
    int id = shmget((key_t)strtol(key, 0, 0), 0, 0);
    if (id >= 0) return escaped("host shared memory segment found");
    return blocked("shmget", errno);
}

static const char *NS[] = {"mnt", "pid", "net", "uts", "ipc", "cgroup", "user"};

/* True when `link` (a readlink of an fd) names one of our own namespaces. */
static int own_namespace(const char *link) {
    for (unsigned i = 0; i < sizeof NS / sizeof *NS; i++) {
        char p[64], t[128] = "";
        snprintf(p, sizeof p, "/proc/self/ns/%s", NS[i]);
        if (readlink(p, t, sizeof t - 1) > 0 && !strcmp(t, link)) return 1;
    }
    return 0;
}

/* setns into a namespace that is not ours, through any inherited fd
 * (3..1023) or a namespace file of any visible process, is a way out.
 * (Re-entering one's own namespace is allowed and proves nothing.) */
static int setns_out(void) {
    int last = 0, tried = 0;
    for (int fd = 3; fd < 1024; fd++) {
        char p[64], t[128] = "";
        if (fcntl(fd, F_GETFD) < 0) continue;
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        readlink(p, t, sizeof t - 1);
        if (own_namespace(t)) continue;
        tried++;
        if (setns(fd, 0) == 0) return escaped("setns on an inherited fd");
        last = errno;
    }
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        for (unsigned i = 0; i < sizeof NS / sizeof *NS; i++) {
            char p[300], t[128] = "";
            snprintf(p, sizeof p, "/proc/%s/ns/%s", e->d_name, NS[i]);
            if (readlink(p, t, sizeof t - 1) <= 0 || own_namespace(t)) continue;
            int fd = open(p, O_RDONLY);
            if (fd < 0) continue;
            tried++;
            if (setns(fd, 0) == 0) return escaped(p);
            last = errno;
            close(fd);
        }
    }
    if (d) closedir(d);
    if (!tried) { printf("blocked no foreign namespace reachable\n"); return 1; }
    return blocked("setns", last);
}

/* Lists fds other than 0..2 (and the directory stream's own). */
static int fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return blocked("opendir", errno);
    int own = dirfd(d), n = 0;
    char found[512] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == own) continue;
        char p[64], t[256] = "";
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        readlink(p, t, sizeof t - 1);
        if (strlen(found) + strlen(t) + 2 < sizeof found) { strcat(found, " "); strcat(found, t); }
        n++;
    }
    closedir(d);
    if (n) { printf("escaped %d inherited fd(s):%s\n", n, found); return 0; }
    printf("blocked no inherited fd\n");
    return 1;
}

static int write_file(const char *path, const char *value) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return blocked("open for writing", errno);
    if (write(fd, value, strlen(value)) < 0) return blocked("write", errno);
    close(fd);
    return escaped("written");
}

static int open_by_handle(void) {
    struct { struct file_handle h; unsigned char b[128]; } fh = {.h = {.handle_bytes = 128}};
    int mount_id;
    if (syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &fh.h, &mount_id, 0) != 0)
        return gate("name_to_handle_at", -1);
    int root = open("/", O_RDONLY | O_DIRECTORY);
    return gate("open_by_handle_at", syscall(SYS_open_by_handle_at, root, &fh.h, O_RDONLY));
}

/* io_uring_setup with one entry; the params struct (120 bytes) zeroed. */
static int io_uring(void) {
    unsigned char params[128];
    memset(params, 0, sizeof params);
    long fd = syscall(SYS_io_uring_setup, 1, params);
    int r = gate("io_uring_setup", fd);
    if (fd >= 0) close((int)fd);
    return r;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IONBF, 0);
    if (argc < 2) return 2;
    const char *c = argv[1];
    if (!strcmp(c, "chroot-escape") && argc == 3) return chroot_escape(argv[2]);
    if (!strcmp(c, "mknod-open") && argc == 6) return mknod_open(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (!strcmp(c, "ptrace-pid") && argc == 3) return ptrace_pid(atoi(argv[2]));
    if (!strcmp(c, "ptrace-child")) return ptrace_child();
    if (!strcmp(c, "raw-bind") && argc == 3) return raw_bind(argv[2]);
    if (!strcmp(c, "abstract-connect") && argc == 3) return abstract_connect(argv[2]);
    if (!strcmp(c, "shmget") && argc == 3) return shm(argv[2]);
    if (!strcmp(c, "setns-out")) return setns_out();
    if (!strcmp(c, "fds")) return fds();
    if (!strcmp(c, "write-file") && argc == 4) return write_file(argv[2], argv[3]);
    if (!strcmp(c, "open-by-handle")) return open_by_handle();
    if (!strcmp(c, "finit-module")) return gate("finit_module", syscall(SYS_finit_module, -1, "", 0));
    if (!strcmp(c, "io-uring")) return io_uring();
    if (!strcmp(c, "keyctl")) return gate("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
    if (!strcmp(c, "bpf")) {
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        return gate("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a));
    }
    if (!strcmp(c, "perf-system-wide")) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.size = sizeof a;
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_CPU_CLOCK;
        return gate("perf_event_open", syscall(SYS_perf_event_open, &a, -1, 0, -1, 0));
    }
    if (!strcmp(c, "unshare-user")) return gate("unshare", unshare(CLONE_NEWUSER));
    if (!strcmp(c, "sethostname") && argc == 3) return gate("sethostname", sethostname(argv[2], strlen(argv[2])));
    if (!strcmp(c, "ioperm")) return gate("ioperm", ioperm(0x80, 1, 1));
    /* A wrong second magic: EINVAL once past the CAP_SYS_BOOT check, never a reboot. */
    if (!strcmp(c, "reboot-bad-magic")) return gate("reboot", syscall(SYS_reboot, 0xfee1dead, 0x1234, 0, 0));
    if (!strcmp(c, "syslog")) return gate("syslog", syscall(SYS_syslog, 10 /* SIZE_BUFFER */, 0, 0));
    if (!strcmp(c, "mount-tmpfs") && argc == 3) return gate("mount", mount("none", argv[2], "tmpfs", 0, 0));
    return 2;
}
