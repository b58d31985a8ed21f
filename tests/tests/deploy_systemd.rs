//! deploy/systemd: `systemd-analyze verify` accepts the unit, and the exporter
//! run the way the unit runs it — an unprivileged uid with exactly the unit's
//! AmbientCapabilities, no_new_privs, the environment file's variables only —
//! serves /metrics with the true values of a map this test created. Traced
//! with strace, every system call it makes is in the unit's SystemCallFilter
//! (as systemd-analyze expands it) and every socket is of a family in
//! RestrictAddressFamilies. (No systemd as PID 1 here, so the unit itself is
//! not started; its filesystem protections are not exercised.)
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::PermissionsExt,
    process::Command,
};

use e2e_tests::{deploy::repo_path, exporter_binary, have_root, Fixture};
use support::{sample, Server};

const UNIT: &str = "deploy/systemd/bpf-inventory-exporter.service";
const ENV_FILE: &str = "deploy/systemd/bpf-inventory-exporter.env";
const INSTALLED_BINARY: &str = "/usr/local/bin/bpf-inventory-exporter";

/// The [Service] section's settings; a repeated key keeps every value.
fn service_settings() -> BTreeMap<String, Vec<String>> {
    let unit = fs::read_to_string(repo_path(UNIT)).unwrap();
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_service = false;
    for line in unit.lines() {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if let Some((key, value)) = line.split_once('=') {
            if in_service && !line.starts_with('#') {
                settings.entry(key.into()).or_default().push(value.into());
            }
        }
    }
    settings
}

fn setting<'a>(settings: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match settings.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    // verify checks that ExecStart's program exists: point it at the built one.
    let unit = fs::read_to_string(repo_path(UNIT)).unwrap();
    assert!(unit.contains(&format!("ExecStart={INSTALLED_BINARY} serve\n")));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bpf-inventory-exporter.service");
    let binary = exporter_binary().display().to_string();
    fs::write(&path, unit.replace(INSTALLED_BINARY, &binary)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze (apt-get install systemd)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    // Unknown keys and bad values are warnings with exit status 0: none allowed.
    assert_eq!(report, "", "systemd-analyze verify");
}

/// Every system call of systemd's syscall groups, by group, with the groups
/// a group includes expanded.
fn syscall_filter(groups: &[&str]) -> BTreeSet<String> {
    let out = Command::new("systemd-analyze")
        .arg("syscall-filter")
        .output()
        .expect("run systemd-analyze");
    assert!(out.status.success());
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut group = String::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let item = line.trim();
        if line.starts_with('@') {
            group = item.to_owned();
        } else if !item.is_empty() && !item.starts_with('#') {
            members
                .entry(group.clone())
                .or_default()
                .push(item.to_owned());
        }
    }
    let mut calls = BTreeSet::new();
    let mut todo: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    let mut seen = BTreeSet::new();
    while let Some(item) = todo.pop() {
        if !item.starts_with('@') {
            calls.insert(item);
        } else if seen.insert(item.clone()) {
            todo.extend(
                members
                    .get(&item)
                    .unwrap_or_else(|| panic!("group {item}"))
                    .clone(),
            );
        }
    }
    calls
}

/// System call names and socket families in an `strace -f` log.
fn traced_calls(trace: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut calls = BTreeSet::new();
    let mut families = BTreeSet::new();
    for line in trace.lines() {
        // "1234  name(args" or "1234  <... name resumed>"
        let rest = line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        let rest = rest.strip_prefix("<... ").unwrap_or(rest);
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        if let Some(args) = rest.strip_prefix("socket(") {
            families.insert(args.split(',').next().unwrap().to_owned());
        }
        calls.insert(name);
    }
    (calls, families)
}

#[test]
fn exporter_serves_under_the_units_capabilities_syscall_filter_and_address_families() {
    if !have_root(
        "exporter_serves_under_the_units_capabilities_syscall_filter_and_address_families",
    ) {
        return;
    }
    let settings = service_settings();
    assert_eq!(
        setting(&settings, "AmbientCapabilities"),
        "CAP_BPF CAP_PERFMON"
    );
    assert_eq!(
        setting(&settings, "CapabilityBoundingSet"),
        "CAP_BPF CAP_PERFMON"
    );
    assert_eq!(setting(&settings, "NoNewPrivileges"), "yes");
    assert_eq!(setting(&settings, "DynamicUser"), "yes");
    let caps: String = setting(&settings, "AmbientCapabilities")
        .split(' ')
        .map(|c| format!(",+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();

    let mut fixture = Fixture::load().unwrap();
    let map_id = fixture.map_id("fixture_hash");
    fixture.fill_hash(0..11);

    // strace runs as the unprivileged user too (it traces its own child).
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let trace_path = dir.path().join("trace");
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--no-new-privs",
        ])
        .arg(format!("--inh-caps=-all{caps}"))
        .arg(format!("--ambient-caps=-all{caps}"))
        .arg(format!("--bounding-set=-all{caps}"))
        .args(["--", "strace", "-f", "-qq", "-o"])
        .arg(&trace_path)
        .arg(exporter_binary())
        // systemd starts a service with a clean environment plus EnvironmentFile=.
        .env_clear();
    let env_file = fs::read_to_string(repo_path(ENV_FILE)).unwrap();
    for line in env_file
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (key, value) = line.split_once('=').unwrap();
        command.env(key, value);
    }
    let mut server = Server::spawn(command, &[]).unwrap();
    server.wait_ready().unwrap();
    let page = server.metrics().unwrap();
    let series = format!("{{id=\"{map_id}\",name=\"fixture_hash\",type=\"hash\"}}");
    assert_eq!(
        sample(&page, &format!("bpf_map_entries{series}")),
        Some(11.0)
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_max_entries{series}")),
        Some(1000.0)
    );
    assert_eq!(
        sample(&page, &format!("bpf_map_memory_bytes{series}")),
        None
    );

    // SIGTERM to the exporter (strace's child); strace exits with its status.
    let children =
        fs::read_to_string(format!("/proc/{0}/task/{0}/children", server.pid())).unwrap();
    let exporter: libc::pid_t = children.trim().parse().unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is our grandchild.
    assert_eq!(unsafe { libc::kill(exporter, libc::SIGTERM) }, 0);
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        server.logs()
    );

    let (calls, families) = traced_calls(&fs::read_to_string(&trace_path).unwrap());
    assert!(calls.contains("bpf"), "{calls:?}");
    let filter = setting(&settings, "SystemCallFilter");
    let mut allowed = syscall_filter(&["@default"]);
    for item in filter.split(' ') {
        allowed.extend(syscall_filter(&[item]));
    }
    let denied: Vec<&String> = calls.difference(&allowed).collect();
    assert!(
        denied.is_empty(),
        "calls outside SystemCallFilter={filter}: {denied:?}"
    );

    let allowed_families = setting(&settings, "RestrictAddressFamilies");
    assert!(families.contains("AF_INET"), "{families:?}");
    for family in &families {
        assert!(
            allowed_families.split(' ').any(|f| f == family),
            "socket({family}) outside RestrictAddressFamilies={allowed_families}"
        );
    }
}

const WEB_DROP_IN: &str = "deploy/systemd/web-config.conf";

/// The web-config drop-in verifies clean next to the unit, and is read: the
/// same file with a misspelt key draws systemd-analyze's warning.
#[test]
fn systemd_analyze_verifies_the_web_config_drop_in() {
    let unit = fs::read_to_string(repo_path(UNIT)).unwrap();
    let drop_in = fs::read_to_string(repo_path(WEB_DROP_IN)).unwrap();
    let verify = |drop_in: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpf-inventory-exporter.service");
        let binary = exporter_binary().display().to_string();
        fs::write(&path, unit.replace(INSTALLED_BINARY, &binary)).unwrap();
        let drop_ins = dir.path().join("bpf-inventory-exporter.service.d");
        fs::create_dir(&drop_ins).unwrap();
        fs::write(drop_ins.join("web-config.conf"), drop_in).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("run systemd-analyze");
        assert!(out.status.success(), "{out:?}");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert_eq!(verify(&drop_in), "");
    let misspelt = drop_in.replacen("LoadCredential=", "LoadCredentials=", 1);
    assert!(
        verify(&misspelt).contains("web-config.conf:"),
        "the drop-in is not read"
    );
}

/// With the drop-in, the exporter as the unit runs it (unprivileged uid with
/// the unit's ambient capabilities, no_new_privs) reads its web config from a
/// credentials directory as systemd makes one (owned by the service's user,
/// 0500, files 0400) through BPF_EXPORTER_WEB_CONFIG_FILE, serves TLS with
/// basic auth (401 without, 200 and the page with), and after the run-time
/// capability drop holds CAP_BPF only.
#[test]
fn exporter_reads_the_drop_ins_web_config_as_the_units_user() {
    if !have_root("exporter_reads_the_drop_ins_web_config_as_the_units_user") {
        return;
    }
    let drop_in = fs::read_to_string(repo_path(WEB_DROP_IN)).unwrap();
    let variable = drop_in
        .lines()
        .find_map(|l| l.strip_prefix("Environment="))
        .unwrap();
    let (name, value) = variable.split_once('=').unwrap();
    assert_eq!(name, "BPF_EXPORTER_WEB_CONFIG_FILE");
    let credentials: Vec<&str> = drop_in
        .lines()
        .filter_map(|l| l.strip_prefix("LoadCredential="))
        .map(|c| c.split_once(':').unwrap().0)
        .collect();
    assert_eq!(
        credentials,
        ["web-config.yml", "server.pem", "server-key.pem"]
    );

    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = root.path().join("credentials");
    fs::create_dir(&dir).unwrap();
    support::pki::server_pki(&dir, "localhost").unwrap();
    let hash = bcrypt::hash("scrape-password", 4).unwrap();
    fs::write(
        dir.join("web-config.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    for file in &credentials {
        let path = dir.join(file);
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    }
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();

    let settings = service_settings();
    let caps: String = setting(&settings, "AmbientCapabilities")
        .split(' ')
        .map(|c| format!(",+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--no-new-privs",
        ])
        .arg(format!("--inh-caps=-all{caps}"))
        .arg(format!("--ambient-caps=-all{caps}"))
        .arg(format!("--bounding-set=-all{caps}"))
        .arg("--")
        .arg(exporter_binary())
        .env_clear()
        .env(name, value.replace("%d", dir.to_str().unwrap()));
    let server = Server::spawn(command, &[]).unwrap();
    let port = server.address.port();
    let curl = |auth: &[&str], path: &str| {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(dir.join("ca.crt"))
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(auth)
            .args(["-w", "\n%{http_code}"])
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(curl(&[], "/healthz").ends_with("\n401"));
    let deadline = std::time::Instant::now() + support::STARTUP;
    while !curl(&["-u", "prometheus:scrape-password"], "/readyz").ends_with("\n200") {
        assert!(std::time::Instant::now() < deadline, "{}", server.logs());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let page = curl(&["-u", "prometheus:scrape-password"], "/metrics");
    assert!(page.ends_with("\n200"), "{page}");
    assert_eq!(
        sample(
            &page,
            "bpf_exporter_collector_success{collector=\"programs\"}"
        ),
        Some(1.0),
        "{page}"
    );
    // The run-time drop: CAP_BPF only (CAP_PERFMON went after loading; the
    // unit grants no CAP_SYS_ADMIN to keep).
    let status = fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    for key in ["CapEff:\t", "CapPrm:\t", "CapAmb:\t"] {
        let value = status.lines().find_map(|l| l.strip_prefix(key)).unwrap();
        let expected = if key == "CapAmb:\t" {
            "0000000000000000"
        } else {
            "0000008000000000"
        };
        assert_eq!(value, expected, "{key}{value}");
    }
}
