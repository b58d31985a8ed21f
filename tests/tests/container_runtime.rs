//! The image in a real OCI runtime: podman with runc runs the image from
//! deploy/container/build.sh the way the DaemonSet's pod runs it, every
//! setting taken from the rendered manifests (`kubectl kustomize`): the
//! container's args, env, capabilities, read-only root, no_new_privs, uid,
//! hostPID, its port (published on 127.0.0.1, a port the test picked) and the
//! hostPath volumes at their mount paths. The seccomp profile is
//! deploy/seccomp/bpf-inventory-exporter.json, as on a runtime whose default
//! profile refuses bpf() without CAP_SYS_ADMIN (this host's podman, whose
//! default is checked to fail with the one-line hint).
//! On these hosts crun cannot run containers (hybrid cgroups), hence runc with
//! cgroupfs, and limits above the session's hard limits fail (no
//! CAP_SYS_RESOURCE), hence the lowered ulimits.
mod podman;
mod support;

use std::{fs, os::fd::AsFd, path::PathBuf, process::Command, time::Duration};

use e2e_tests::{exporter_binary, pinned::Bpffs, tmux::Tmux, Fixture, FIXTURE_PROG};
use podman::*;
use serde_json::Value;
use support::{free_port, http_get, sample, wait_until};

/// The DaemonSet's exporter container under podman's own default seccomp
/// profile (this host's containers-common allows bpf() only with
/// CAP_SYS_ADMIN): it exits with one line that names the seccomp profile and
/// the docs section, and the kernel's error once.
#[test]
fn default_seccomp_profile_fails_with_one_line_naming_it() {
    let test = "default_seccomp_profile_fails_with_one_line_naming_it";
    if !runtime_present(test) {
        return;
    }
    let Some(pod) = pod_spec(test, false) else {
        return;
    };
    let exporter = &pod["containers"][0];
    let mut created = Created::default();
    let image = created.exporter_image("seccomp");
    let name = created.name("default-seccomp");
    let mut options = run_options(&pod, exporter, &|host| host.to_owned());
    options.retain(|o| !o.starts_with("--security-opt=seccomp="));
    let out = podman_command(&["run", "--name", &name])
        .args(&options)
        .arg(&image)
        .args(args(exporter))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    // Which map is created first varies: aya keeps the maps in a HashMap.
    let map = last
        .strip_prefix(
            "bpf-inventory-exporter: loading the BPF object failed: bpf() was refused (EPERM) \
             although CAP_BPF is held, so the container's seccomp profile likely blocks it (see \
             docs/security.md#seccomp-profile): map error: failed to create map `",
        )
        .and_then(|rest| rest.strip_suffix("`: Operation not permitted (os error 1)"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        !map.is_empty()
            && map
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.".contains(&b)),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("seccomp profile likely").count(),
        1,
        "{stderr}"
    );
    assert_eq!(stderr.matches("not permitted").count(), 1, "{stderr}");
}

/// The DaemonSet's pod under runc with the profile in deploy/: it serves the
/// fixture's true values, keeps CAP_BPF alone, names a map's owner in another
/// container under a kubelet-style pod cgroup by pod and container, runs
/// `top` through `exec -it`, stops at SIGTERM; the pin init container pins
/// the text iterators.
#[test]
fn daemonset_pod_runs_under_runc_with_the_seccomp_profile() {
    let test = "daemonset_pod_runs_under_runc_with_the_seccomp_profile";
    if !runtime_present(test) {
        return;
    }
    let (Some(pod), Some(with_pin)) = (pod_spec(test, false), pod_spec(test, true)) else {
        return;
    };
    let exporter = &pod["containers"][0];
    assert_eq!(exporter["name"], "exporter");
    let mut created = Created::default();
    let image = created.exporter_image("runc");
    let mut fixture = Fixture::load().unwrap();
    let map_id = fixture.map_id("fixture_hash");
    let prog_id = fixture.program_id(FIXTURE_PROG);
    fixture.fill_hash(0..7);

    // The exporter, its container port published on a port the test picked.
    let ports = exporter["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1);
    let container_port = ports[0]["containerPort"].as_u64().unwrap();
    let port = free_port().unwrap();
    let name = created.name("exporter");
    let out = podman_command(&["run", "--detach", "--name", &name])
        .arg(format!("--publish=127.0.0.1:{port}:{container_port}"))
        .args(run_options(&pod, exporter, &|host| host.to_owned()))
        .arg(&image)
        .args(args(exporter))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let ready = wait_until("/readyz 200", Duration::from_secs(60), || {
        http_get(&url("/readyz"), &[]).is_ok_and(|r| r.status == 200)
    });
    if let Err(error) = ready {
        panic!("{error}: {:?}", podman_command(&["logs", &name]).output());
    }

    // The fixture's map with its true values.
    let page = http_get(&url("/metrics"), &[]).unwrap().body;
    let series = format!("{{id=\"{map_id}\",name=\"fixture_hash\",type=\"hash\"}}");
    assert_eq!(
        sample(&page, &format!("bpf_map_max_entries{series}")),
        Some(1000.0)
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_entries{series}")),
        Some(7.0)
    );

    // Granted CAP_BPF + CAP_PERFMON; CAP_BPF alone kept once loaded.
    let pid = container_pid(&name);
    let granted = (1u64 << CAP_BPF) | (1u64 << CAP_PERFMON);
    assert_eq!(status_mask(pid, "CapBnd:"), granted);
    assert_eq!(status_mask(pid, "CapEff:"), 1u64 << CAP_BPF);
    assert_eq!(status_mask(pid, "CapPrm:"), 1u64 << CAP_BPF);

    // Another container under a kubelet-style pod cgroup (cgroupfs driver)
    // holding fixture_hash: its owner with the pod's uid and its container id.
    let pod_uid = format!("0b5e8f4a-1c2d-4e5f-8a9b-{:012x}", std::process::id());
    let parent = format!("/kubepods/besteffort/pod{pod_uid}");
    created.pod_cgroups.push(parent.clone());
    let holder = created.name("holder");
    let sleep = sleep_image(&mut created);
    let map_fd = fixture
        .map_data("fixture_hash")
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .unwrap();
    let options = [
        "--name",
        &holder,
        "--cgroup-parent",
        &parent,
        "--ulimit=nofile=1024:1024",
        "--ulimit=nproc=1024:1024",
        "--network=none",
        &sleep,
        "300",
    ]
    .map(String::from);
    let out = run_holding(&options, &map_fd);
    assert!(out.status.success(), "{out:?}");
    let container_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(container_id.len(), 64, "{container_id}");
    let holder_pid = container_pid(&holder);
    let detail = http_get(&url(&format!("/api/v1/maps/{map_id}")), &[]).unwrap();
    let detail: Value = serde_json::from_str(&detail.body).unwrap();
    let owners = detail["map"]["owners"].as_array().unwrap();
    let owner = owners
        .iter()
        .find(|o| o["pid"] == holder_pid)
        .unwrap_or_else(|| panic!("pid {holder_pid} in {owners:?}"));
    assert_eq!(owner["comm"], "sleep");
    assert_eq!(owner["pod_uid"], pod_uid.as_str());
    assert_eq!(owner["container_id"], container_id.as_str());
    assert_eq!(owner["cgroup"], format!("{parent}/libpod-{container_id}"));

    // `kubectl exec -it <pod> -- /bpf-inventory-exporter top` (docs/top.md):
    // `top` in the running container, with its capabilities and seccomp
    // profile and no shell, in a terminal, shows the fixture's map.
    let tmux = Tmux::start("env PS1='$ ' sh");
    tmux.wait_for("the prompt", |s| s.starts_with('$'));
    tmux.text(&format!(
        "podman --runtime {RUNC} --cgroup-manager=cgroupfs exec -it {name} \
         /bpf-inventory-exporter top --interval 500ms; echo top-exit=$?"
    ));
    tmux.keys(&["Enter"]);
    let map_row = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains("fixture_hash"))
            .map(str::to_owned)
    };
    let screen = tmux.wait_for("top's map row", |s| map_row(s).is_some());
    let row = map_row(&screen).unwrap();
    assert!(
        row.trim_start_matches('│').starts_with(&map_id.to_string()) && row.contains("7/1000"),
        "{row}"
    );
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("top's exit", |s| {
        s.lines().any(|l| l.starts_with("top-exit="))
    });
    assert!(screen.lines().any(|l| l == "top-exit=0"), "{screen}");
    drop(tmux);

    // SIGTERM: the container's process exits within 2 s, successfully.
    let exporter_exit = pidfd(pid);
    podman(&["kill", "--signal", "TERM", &name]);
    assert!(
        exited_within(&exporter_exit, Duration::from_secs(2)),
        "not stopped in 2 s"
    );
    podman(&["wait", &name]);
    let code = podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.trim(), "0");

    // The pin init container, its /sys/fs/bpf a bpffs of the test's.
    let init = &with_pin["initContainers"][0];
    assert_eq!(init["name"], "pin");
    let bpffs = Bpffs::mount();
    let host_bpffs = bpffs.path().to_str().unwrap().to_owned();
    let map_host = |host: &str| match host {
        "/sys/fs/bpf" => host_bpffs.clone(),
        other => other.to_owned(),
    };
    let pin = created.name("pin");
    let out = podman_command(&["run", "--name", &pin])
        .args(run_options(&with_pin, init, &map_host))
        .arg(&image)
        .args(args(init))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = PathBuf::from(args(init)[2].replace("/sys/fs/bpf", &host_bpffs));
    assert_eq!(dir, bpffs.path().join("bpf-inventory"));
    let progs = fs::read_to_string(dir.join("progs.debug")).unwrap();
    let line = progs
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&prog_id.to_string()))
        .unwrap_or_else(|| panic!("prog {prog_id} in\n{progs}"));
    assert!(line.contains(FIXTURE_PROG), "{line}");
    let out = Command::new(exporter_binary())
        .args(["unpin", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
