//! Compiles the test fixture (exporter-ebpf/fixture.bpf.c) into OUT_DIR, whole
//! and as the FIXTURE_CORE subset every kernel from 5.10 loads.
use std::{env, path::PathBuf, process::Command};

const EBPF_DIR: &str = "../exporter-ebpf";

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let multiarch = format!("/usr/include/{}-linux-gnu", env::consts::ARCH);
    for (object, defines) in [
        ("fixture.bpf.o", &[][..]),
        ("fixture-core.bpf.o", &["-DFIXTURE_CORE"][..]),
    ] {
        let status = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .args(["-I", EBPF_DIR, "-I", &multiarch])
            .args(defines)
            .args(["-c", "../exporter-ebpf/fixture.bpf.c", "-o"])
            .arg(out.join(object))
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run `{clang}` ({e}): apt-get install clang libbpf-dev")
            });
        assert!(
            status.success(),
            "clang failed to compile fixture.bpf.c into {object}"
        );
    }
    println!("cargo:rerun-if-changed={EBPF_DIR}");
    println!("cargo:rerun-if-env-changed=CLANG");
}
