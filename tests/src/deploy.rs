//! Helpers of the deploy/ tests (tests/tests/deploy_*.rs): paths in the
//! repository, the validators ./dev installs under target/, and running a
//! tool with input on stdin.
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::child::ChildGuard;

/// The Kubernetes release whose schemas the manifests are validated against
/// (the newest that kubernetes-validate ships).
pub const KUBERNETES_VERSION: &str = "1.37.0";

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `path` under the repository's root.
pub fn repo_path(path: &str) -> PathBuf {
    repo_root().join(path)
}

/// A validator ./dev installs under target/, if it is there. Without it the
/// test skips with a message, except under CI, where that is a failure.
pub fn installed(test: &str, path: &str) -> Option<PathBuf> {
    let full = repo_path(path);
    if full.exists() {
        return Some(full);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {path} missing: ./dev test installs it"
    );
    eprintln!("skipping {test}: {path} missing; run ./dev test (it installs it)");
    None
}

/// The venv's python (kubernetes-validate, PyYAML).
pub const PYTHON: &str = "target/deploy-venv/bin/python";
/// The npm package with the prometheus-operator CRD schemas.
pub const NODE_MODULES: &str = "target/deploy-npm/node_modules";

/// Runs `command` with `input` on stdin; its stdout, or an error with its stderr.
pub fn run(command: &mut Command, input: &[u8]) -> Result<String> {
    let mut child = ChildGuard::spawn(
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .with_context(|| format!("starting {command:?}"))?;
    // Written from a thread: a child that prints before reading all of stdin
    // could otherwise fill its stdout pipe and never read the rest.
    let mut stdin = child.stdin.take().context("stdin")?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer.join().expect("stdin writer")?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `kubectl kustomize DIR` (DIR relative to the repository's root).
pub fn kustomize(dir: &str) -> Result<String> {
    run(
        Command::new("kubectl").arg("kustomize").arg(repo_path(dir)),
        b"",
    )
    .with_context(|| format!("kubectl kustomize {dir} (kubectl is an apt package ./dev installs)"))
}

/// tests/deploy/k8s.py COMMAND ARGS with `input` on stdin, in the venv.
pub fn k8s_py(python: &Path, args: &[&str], input: &[u8]) -> Result<String> {
    run(
        Command::new(python)
            .arg(repo_path("tests/deploy/k8s.py"))
            .args(args),
        input,
    )
}

/// Multi-document YAML as JSON values.
pub fn yaml_documents(python: &Path, yaml: &str) -> Result<Vec<Value>> {
    let json = k8s_py(python, &["to-json"], yaml.as_bytes())?;
    Ok(serde_json::from_str(&json)?)
}
