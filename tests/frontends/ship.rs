//! Build → ship → run: the demo image built by podman, pushed to a registry
//! started by the test, removed locally, pulled back and run with the
//! runtime under test by podman, by containerd (`ctr`) and by Docker.

use bench::frontend::Podman;

use crate::services::{Containerd, Dockerd, Registry};
use crate::{DEMO, assert_podman_leaves_nothing, podman_with_demo, ready, runtime_under_test};

fn text(o: &std::process::Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Builds the demo image and pushes it to `registry` as `HOST/isolab-demo`.
fn ship(registry: &Registry) -> (Podman, String) {
    let podman = podman_with_demo();
    let remote = format!("{}/isolab-demo:latest", registry.host);
    podman.check(&["tag", DEMO, &remote]).unwrap();
    if let Err(e) = podman.check(&["push", "--quiet", "--tls-verify=false", &remote]) {
        panic!("{e}\nregistry log:\n{}", registry.log());
    }
    (podman, remote)
}

#[test]
fn build_push_pull_run_with_podman() {
    let test = "build_push_pull_run_with_podman";
    if !ready(test, &["podman", "docker-registry"]) {
        return;
    }
    let registry = Registry::start();
    let (podman, remote) = ship(&registry);
    podman.check(&["rmi", DEMO, &remote]).unwrap();
    assert_eq!(
        podman.check(&["images", "--quiet"]).unwrap().trim(),
        "",
        "removed locally"
    );
    podman
        .check(&["pull", "--quiet", "--tls-verify=false", &remote])
        .unwrap();
    let r = runtime_under_test();
    let mut args = podman.run_args(&r);
    args.extend(["--rm", &remote, "/bin/echo", "hi"].map(String::from));
    let o = podman.command().args(&args).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{}", text(&o));
    assert!(o.status.success(), "{}", text(&o));
    // The small static program in the image runs too (its usage on --help).
    let mut args = podman.run_args(&r);
    args.extend(["--rm", &remote, "/bin/isolab-workload", "--help"].map(String::from));
    let o = podman.command().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!o.stdout.is_empty() || !o.stderr.is_empty(), "{}", text(&o));
    assert_podman_leaves_nothing(podman);
}

#[test]
fn containerd_runs_the_pulled_image() {
    let test = "containerd_runs_the_pulled_image";
    if !ready(
        test,
        &[
            "podman",
            "docker-registry",
            "containerd",
            "ctr",
            "containerd-shim-runc-v2",
        ],
    ) {
        return;
    }
    let registry = Registry::start();
    let (podman, remote) = ship(&registry);
    let ctrd = Containerd::start();
    let o = ctrd.ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        "native",
        &remote,
    ]);
    assert!(o.status.success(), "{}\n{}", text(&o), ctrd.log());
    let runc_root = ctrd_runc_root(&ctrd);
    let r = runtime_under_test();
    for (runtime, id) in [("runc", "ref"), (r.as_str(), "ours")] {
        let ctr_run = |id: &str, cmd: &[&str]| {
            let mut a = vec![
                "run",
                "--rm",
                "--snapshotter",
                "native",
                "--runc-binary",
                runtime,
                "--runc-root",
                &runc_root,
                &remote,
                id,
            ];
            a.extend_from_slice(cmd);
            ctrd.ctr(&a)
        };
        let o = ctr_run(id, &["/bin/echo", "hi"]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "hi\n",
            "{runtime}: {}\n{}",
            text(&o),
            ctrd.log()
        );
        let o = ctr_run(&format!("{id}-7"), &["/bin/sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7), "{runtime}: {}", text(&o));
    }
    let o = ctrd.ctr(&["containers", "list", "--quiet"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "",
        "--rm removed them"
    );
    drop(ctrd);
    assert_podman_leaves_nothing(podman);
}

/// The runc-compatible runtime's state root, inside containerd's directory.
fn ctrd_runc_root(ctrd: &Containerd) -> String {
    ctrd.dir().join("runc").display().to_string()
}

#[test]
fn docker_runs_the_pulled_image() {
    let test = "docker_runs_the_pulled_image";
    if !ready(test, &["podman", "docker-registry", "dockerd", "docker"]) {
        return;
    }
    let registry = Registry::start();
    let (podman, remote) = ship(&registry);
    let r = runtime_under_test();
    let dockerd = Dockerd::start(&r);
    // 127.0.0.0/8 registries are plain HTTP to Docker by default.
    let o = dockerd.docker(&["pull", "--quiet", &remote]);
    assert!(o.status.success(), "{}\n{}", text(&o), dockerd.log());
    for runtime in ["runc", "isolab"] {
        let run = |cmd: &[&str]| {
            let mut a = vec![
                "run",
                "--rm",
                "--runtime",
                runtime,
                "--network",
                "none",
                &remote,
            ];
            a.extend_from_slice(cmd);
            dockerd.docker(&a)
        };
        let o = run(&["/bin/echo", "hi"]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "hi\n",
            "{runtime}: {}\n{}",
            text(&o),
            dockerd.log()
        );
        let o = run(&["/bin/sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7), "{runtime}: {}", text(&o));
    }
    drop(dockerd);
    assert_podman_leaves_nothing(podman);
}
