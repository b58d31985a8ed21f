//! Compiles the test fixture (exporter-ebpf/fixture.bpf.c) into OUT_DIR.
use std::{env, path::PathBuf, process::Command};

const EBPF_DIR: &str = "../exporter-ebpf";

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let multiarch = format!("/usr/include/{}-linux-gnu", env::consts::ARCH);
    let status = Command::new(&clang)
        .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
        .args(["-I", EBPF_DIR, "-I", &multiarch])
        .args(["-c", "../exporter-ebpf/fixture.bpf.c", "-o"])
        .arg(out.join("fixture.bpf.o"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run `{clang}` ({e}): apt-get install clang libbpf-dev"));
    assert!(status.success(), "clang failed to compile fixture.bpf.c");
    println!("cargo:rerun-if-changed={EBPF_DIR}");
    println!("cargo:rerun-if-env-changed=CLANG");
}
