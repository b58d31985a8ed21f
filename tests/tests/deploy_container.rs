//! deploy/container: deploy/container/build.sh builds the static binary and
//! the image with podman (FROM scratch: nothing is pulled); the image's root
//! filesystem holds the binary alone; and that binary, run chrooted into a
//! root holding only itself plus /proc and /sys, as uid 0 with a bounding set
//! of exactly CAP_BPF + CAP_PERFMON and no_new_privs (the DaemonSet's posture),
//! serves /metrics with the true values of a map this test created.
//! (`podman run` cannot be used on these machines: crun cannot set rlimits.)
mod support;

use std::{
    ffi::CString,
    fs,
    io::Error,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
};

use e2e_tests::{deploy::repo_path, have_root, Fixture};
use support::{sample, Server};

const IMAGE: &str = "localhost/bpf-inventory-exporter:e2e";
const CAP_PERFMON: libc::c_ulong = 38;
const CAP_BPF: libc::c_ulong = 39;

fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .output()
        .expect("run podman (apt-get install podman)");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The image mounted with `podman image mount`, unmounted on drop.
struct MountedImage(PathBuf);

impl MountedImage {
    fn mount() -> Self {
        Self(PathBuf::from(podman(&["image", "mount", IMAGE]).trim()))
    }
}

impl Drop for MountedImage {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["image", "unmount", IMAGE])
            .output();
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    files
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

/// The result of a raw syscall as io::Result.
fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(())
    }
}

/// mount(2) with optional source and filesystem type.
///
/// # Safety
/// Each pointer is null or a NUL-terminated string.
unsafe fn mount(
    source: *const libc::c_char,
    target: &CString,
    fstype: *const libc::c_char,
    flags: libc::c_ulong,
) -> std::io::Result<()> {
    // SAFETY: the caller passes valid strings or null; no data argument.
    check(unsafe { libc::mount(source, target.as_ptr(), fstype, flags, std::ptr::null()) })
}

/// `/bpf-inventory-exporter` run in a new mount namespace, chrooted into a
/// read-only tmpfs that holds the image's binary (bind-mounted), /proc and
/// /sys, as uid 0 with no_new_privs and a bounding set of CAP_BPF + CAP_PERFMON
/// (so that exec gives it those two and nothing else).
fn chrooted_exporter(binary: &Path, root: &Path) -> Command {
    let binary = c_path(binary);
    let root_dir = c_path(root);
    let target = c_path(&root.join("bpf-inventory-exporter"));
    let proc_dir = c_path(&root.join("proc"));
    let sys_dir = c_path(&root.join("sys"));
    let tmpfs = CString::new("tmpfs").unwrap();
    let proc_fs = CString::new("proc").unwrap();
    let slash = CString::new("/").unwrap();
    let sys = CString::new("/sys").unwrap();
    let last_cap: libc::c_ulong = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut command = Command::new("/bpf-inventory-exporter");
    let hook = move || -> std::io::Result<()> {
        let null = std::ptr::null();
        // SAFETY: raw syscalls on strings allocated before the fork.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            mount(null, &slash, null, libc::MS_REC | libc::MS_PRIVATE)?;
            mount(tmpfs.as_ptr(), &root_dir, tmpfs.as_ptr(), 0)?;
            let fd = libc::open(target.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o755);
            check(fd)?;
            check(libc::close(fd))?;
            mount(binary.as_ptr(), &target, null, libc::MS_BIND)?;
            check(libc::mkdir(proc_dir.as_ptr(), 0o555))?;
            check(libc::mkdir(sys_dir.as_ptr(), 0o555))?;
            mount(proc_fs.as_ptr(), &proc_dir, proc_fs.as_ptr(), 0)?;
            mount(sys.as_ptr(), &sys_dir, null, libc::MS_BIND | libc::MS_REC)?;
            mount(null, &root_dir, null, libc::MS_REMOUNT | libc::MS_RDONLY)?;
            check(libc::chroot(root_dir.as_ptr()))?;
            check(libc::chdir(slash.as_ptr()))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            for cap in 0..=last_cap {
                if cap != CAP_BPF && cap != CAP_PERFMON {
                    check(libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0))?;
                }
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec; it makes only
    // raw syscalls on memory allocated before the fork (no allocation, no locks).
    unsafe {
        command.pre_exec(hook);
    }
    command
}

/// A `Cap...:` line of /proc/PID/status as a bit mask.
fn capability_mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
fn image_holds_only_the_static_binary_which_serves_metrics_with_two_capabilities() {
    if !have_root("image_holds_only_the_static_binary_which_serves_metrics_with_two_capabilities") {
        return;
    }
    // Cheap when target/static is up to date; the first run is a release build.
    let status = Command::new(repo_path("deploy/container/build.sh"))
        .arg(IMAGE)
        .status()
        .expect("run deploy/container/build.sh");
    assert!(status.success(), "build.sh: {status}");

    let config: serde_json::Value =
        serde_json::from_str(&podman(&["image", "inspect", IMAGE])).unwrap();
    let config = &config[0]["Config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/bpf-inventory-exporter"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["serve"]));
    assert!(config["ExposedPorts"]["10435/tcp"].is_object(), "{config}");

    let image = MountedImage::mount();
    assert_eq!(
        files_under(&image.0),
        ["bpf-inventory-exporter"],
        "only the binary"
    );

    let mut fixture = Fixture::load().unwrap();
    let map_id = fixture.map_id("fixture_hash");
    fixture.fill_hash(0..7);
    let root = tempfile::tempdir().unwrap();
    let command = chrooted_exporter(&image.0.join("bpf-inventory-exporter"), root.path());
    let server = Server::spawn(command, &[]).unwrap();
    server.wait_ready().unwrap();

    let status = fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    // The image grants two; once the iterators are loaded the exporter keeps
    // only CAP_BPF (docs/security.md "Privileges at run time": CAP_PERFMON is for
    // loading, CAP_SYS_ADMIN, not granted here, for map memory).
    let two = (1u64 << CAP_BPF) | (1u64 << CAP_PERFMON);
    assert_eq!(capability_mask(&status, "CapBnd:"), two, "{status}");
    for field in ["CapEff:", "CapPrm:"] {
        assert_eq!(
            capability_mask(&status, field),
            1u64 << CAP_BPF,
            "{field}\n{status}"
        );
    }
    assert_eq!(capability_mask(&status, "CapInh:"), 0);
    assert_eq!(capability_mask(&status, "CapAmb:"), 0);
    assert!(status.contains("\nNoNewPrivs:\t1\n"), "{status}");
    assert!(status.contains("\nUid:\t0\t0\t0\t0\n"), "{status}");
    let root_link = fs::read_link(format!("/proc/{}/root", server.pid())).unwrap();
    assert_eq!(root_link, root.path(), "chrooted");

    let page = server.metrics().unwrap();
    let series = format!("{{id=\"{map_id}\",name=\"fixture_hash\",type=\"hash\"}}");
    assert_eq!(
        sample(&page, &format!("bpf_map_max_entries{series}")),
        Some(1000.0)
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_entries{series}")),
        Some(7.0)
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_memory_bytes{series}")),
        None,
        "map memory needs CAP_SYS_ADMIN"
    );
    assert!(
        page.contains("bpf_exporter_collector_success{collector=\"maps\"} 1\n"),
        "{page}"
    );
}
