use std::{io::Write, path::PathBuf};

use super::*;

/// A fake root under the temp dir, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("posture-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write(&self, path: &str, content: &[u8]) {
        let path = self.0.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MOUNTINFO_TEXT: &str = "\
23 1 0:21 / /proc rw,nosuid - proc proc rw
45 23 0:40 / /sys/fs/bpf rw,relatime - bpf bpf rw
77 23 0:55 / /run/my\\040token rw,relatime - bpf none rw,delegate_cmds=map_create:prog_load,delegate_progs=any
";

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

fn full_root(name: &str) -> Root {
    let root = Root::new(name);
    for (path, value) in SYSCTLS
        .iter()
        .zip(["2\n", "0\n", "1\n", "1\n", "0\n", "528482304\n"])
    {
        root.write(path, value.as_bytes());
    }
    root.write(LSM, b"lockdown,capability,landlock,yama,bpf");
    root.write(LOCKDOWN, b"none [integrity] confidentiality\n");
    root.write(
        CONFIG_GZ,
        &gzip("CONFIG_BPF=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_BPF_JIT=y\n# CONFIG_BPF_JIT_ALWAYS_ON is not set\nCONFIG_BPF_PRELOAD=m\nCONFIG_BPF_LSM=y\n"),
    );
    root.write(MOUNTINFO, MOUNTINFO_TEXT.as_bytes());
    root
}

#[test]
fn every_source_is_read() {
    let root = full_root("full");
    let mut reader = PostureReader::open_at(&root.0, "6.18.0");
    assert!(reader.unreadable().is_empty(), "{:?}", reader.unreadable());
    let posture = reader.read(Some(4096));
    let config: Vec<(&str, &str)> = posture
        .kernel_config
        .as_ref()
        .unwrap()
        .iter()
        .map(|o| (o.option.as_str(), o.value.as_str()))
        .collect();
    assert_eq!(
        config,
        [
            ("CONFIG_BPF_JIT_ALWAYS_ON", "n"),
            ("CONFIG_BPF_UNPRIV_DEFAULT_OFF", "n"),
            ("CONFIG_BPF_LSM", "y"),
            ("CONFIG_DEBUG_INFO_BTF", "n"),
            ("CONFIG_BPF_PRELOAD", "m"),
            ("CONFIG_BPF_SYSCALL", "y"),
            ("CONFIG_BPF_JIT", "y"),
        ]
    );
    assert_eq!(
        posture,
        Posture {
            unprivileged_bpf_disabled: Some(2),
            stats_enabled: Some(0),
            jit_enabled: Some(1),
            jit_harden: Some(1),
            jit_kallsyms: Some(0),
            jit_limit_bytes: Some(528_482_304),
            jited_bytes: Some(4096),
            lsm: Some(
                ["lockdown", "capability", "landlock", "yama", "bpf"]
                    .map(String::from)
                    .to_vec()
            ),
            lockdown: Some("integrity".into()),
            kernel_config: posture.kernel_config.clone(),
            bpf_fs: Some(vec![
                BpfFsMount {
                    mountpoint: "/sys/fs/bpf".into(),
                    delegate_cmds: None,
                    delegate_maps: None,
                    delegate_progs: None,
                    delegate_attachs: None,
                },
                BpfFsMount {
                    mountpoint: "/run/my token".into(),
                    delegate_cmds: Some("map_create:prog_load".into()),
                    delegate_maps: None,
                    delegate_progs: Some("any".into()),
                    delegate_attachs: None,
                },
            ]),
        }
    );
    assert_eq!(posture.jit_used_ratio(), Some(4096.0 / 528_482_304.0));
}

#[test]
fn what_cannot_be_read_is_null_and_named() {
    let root = Root::new("empty");
    let mut reader = PostureReader::open_at(&root.0, "6.1.0-test");
    let named: Vec<String> = reader.unreadable().iter().map(|e| e.to_string()).collect();
    assert_eq!(named.len(), 10, "{named:#?}");
    for path in SYSCTLS.iter().chain(&[LSM, LOCKDOWN, MOUNTINFO]) {
        assert!(
            named
                .iter()
                .any(|n| n.contains(&root.0.join(path).display().to_string())),
            "{path} not named in {named:#?}"
        );
    }
    assert!(named
        .iter()
        .any(|n| n.starts_with("no kernel config") && n.contains("boot/config-6.1.0-test")));
    assert_eq!(
        reader.read(None),
        Posture::default(),
        "every field null when nothing can be read"
    );
}

#[test]
fn boot_config_is_the_fallback() {
    let root = Root::new("boot");
    root.write("boot/config-6.1.0", b"CONFIG_BPF_JIT_ALWAYS_ON=y\n");
    let posture = PostureReader::open_at(&root.0, "6.1.0").read(None);
    let config = posture.kernel_config.unwrap();
    assert_eq!(config[0].option, "CONFIG_BPF_JIT_ALWAYS_ON");
    assert_eq!(config[0].value, "y");
}

#[test]
fn sysctls_are_read_again_and_keep_their_last_value() {
    let root = full_root("again");
    let mut reader = PostureReader::open_at(&root.0, "6.18.0");
    root.write(SYSCTLS[0], b"0\n");
    // As when CAP_SYS_ADMIN was dropped after start: no longer readable.
    std::fs::remove_file(root.0.join(SYSCTLS[3])).unwrap();
    root.write(MOUNTINFO, b"");
    let posture = reader.read(None);
    assert_eq!(posture.unprivileged_bpf_disabled, Some(0));
    assert_eq!(posture.jit_harden, Some(1));
    assert_eq!(posture.bpf_fs, Some(vec![]));
}

#[test]
fn malformed_values_are_not_numbers() {
    let root = full_root("bad");
    root.write(SYSCTLS[1], b"on\n");
    let reader = PostureReader::open_at(&root.0, "6.18.0");
    let named: Vec<String> = reader.unreadable().iter().map(|e| e.to_string()).collect();
    assert_eq!(named.len(), 1);
    assert!(
        named[0].ends_with("bpf_stats_enabled: not a number: \"on\""),
        "{}",
        named[0]
    );
    assert_eq!(parse_lockdown("[none] integrity"), Some("none".into()));
    assert_eq!(parse_lockdown(""), None);
}
