//! Compiles the BPF iterators (exporter-ebpf/*.bpf.c) with clang into OUT_DIR,
//! where src/bpf/loader.rs embeds them, and the tables of records.h that the
//! record drift test (tests/record_layout.rs) compares with the Rust mirror.
use std::{env, path::PathBuf, process::Command};

#[path = "build/record_tables.rs"]
mod record_tables;

const EBPF_DIR: &str = "../exporter-ebpf";
const BPF_SOURCES: &[&str] = &["iterators", "owners", "preload"];

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // The target's multiarch headers (asm/types.h), not the build host's.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    for name in BPF_SOURCES {
        let src = format!("{EBPF_DIR}/{name}.bpf.c");
        let obj = out.join(format!("{name}.bpf.o"));
        let status = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .args(["-I", EBPF_DIR, "-I", &multiarch, "-c", &src, "-o"])
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run `{clang}` ({e}): install clang and libbpf-dev (apt-get install clang libbpf-dev) or set CLANG")
            });
        assert!(status.success(), "clang failed to compile {src}");
    }
    let tables = record_tables::generate(&PathBuf::from(EBPF_DIR).join("records.h"), &out);
    cc::Build::new()
        .file(tables)
        .include(EBPF_DIR)
        .compile("record_tables");
    // The directory, so every .bpf.c and each header they include (kernel.h,
    // records.h, helpers.h): cargo reruns on a change to any file in it.
    println!("cargo:rerun-if-changed={EBPF_DIR}");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-env-changed=CLANG");
    build_info();
}

/// `bpf_exporter_build_info`'s revision and rustc labels ("unknown" outside git).
fn build_info() {
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    };
    let revision = output("git", &["rev-parse", "--short=12", "HEAD"]);
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // "rustc 1.95.0 (hash date)" -> "1.95.0"
    let rustc_version = output(&rustc, &["--version"])
        .split_whitespace()
        .nth(1)
        .unwrap_or("unknown")
        .to_owned();
    println!("cargo:rustc-env=BPF_EXPORTER_GIT_REVISION={revision}");
    println!("cargo:rustc-env=BPF_EXPORTER_RUSTC_VERSION={rustc_version}");
    // A new commit changes HEAD or the branch ref it points to (absent when packed).
    for name in [
        "HEAD".to_owned(),
        output("git", &["symbolic-ref", "-q", "HEAD"]),
    ] {
        let path = output("git", &["rev-parse", "--git-path", &name]);
        if std::path::Path::new(&path).is_file() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
