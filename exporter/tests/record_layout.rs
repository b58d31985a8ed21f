//! The Rust mirrors (src/bpf/records.rs) must match exporter-ebpf/records.h:
//! every record's size and each member's offset and size as the BPF object
//! the exporter embeds lays them out (its BTF, read by bpftool), and every
//! `#define` value. The names come from records.h (build/record_tables.rs),
//! so a new member or constant is checked without editing this file.
use std::{
    mem::{offset_of, size_of},
    path::Path,
};

use bpf_inventory_exporter::{
    bpf::records,
    testing::btf::{Btf, MemberLayout},
};

/// One record of records.h with the Rust mirror's layout.
struct RecordLayout {
    name: &'static str,
    size: u64,
    members: Vec<MemberLayout>,
}

fn member(name: &str, offset: usize, size: usize) -> MemberLayout {
    MemberLayout {
        name: name.into(),
        offset: offset as u64,
        size: size as u64,
    }
}

fn field_size<R, F>(_: fn(&R) -> &F) -> usize {
    size_of::<F>()
}

include!(concat!(env!("OUT_DIR"), "/record_tables.rs"));

/// Records written from the stack, which clang leaves out of the object's
/// BTF; the host test below and records.h's `_Static_assert` on their size
/// (checked by the BPF compile) cover them.
const NOT_IN_OBJECT_BTF: &[&str] = &["support_record", "owner_record"];

#[test]
fn records_match_the_bpf_object() {
    let object = Path::new(env!("OUT_DIR")).join("iterators.bpf.o");
    let btf = Btf::of_file(&object);
    let mut checked = 0;
    for record in rust_records() {
        let Some((size, members)) = btf.struct_layout(record.name) else {
            assert!(
                NOT_IN_OBJECT_BTF.contains(&record.name),
                "struct {} is not in the BTF of {}",
                record.name,
                object.display()
            );
            continue;
        };
        assert_eq!(
            (record.size, &record.members),
            (size, &members),
            "struct {}: the Rust mirror (left) differs from the BPF object (right)",
            record.name
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "map, program and link records are in the object"
    );
}

#[test]
fn records_match_the_host_compiler() {
    // SAFETY: a constant array generated from records.h, never written.
    let host = unsafe { record_host_layout };
    let mut host = host.iter().copied();
    for record in rust_records() {
        let size = host.next().expect("host size");
        let members: Vec<MemberLayout> = record
            .members
            .iter()
            .map(|m| MemberLayout {
                name: m.name.clone(),
                offset: host.next().expect("host offset"),
                size: host.next().expect("host size"),
            })
            .collect();
        assert_eq!(
            (record.size, &record.members),
            (size, &members),
            "struct {}: the Rust mirror (left) differs from the host C compiler (right)",
            record.name
        );
    }
    assert!(host.next().is_none());
}

#[test]
fn constants_match_records_h() {
    // SAFETY: a constant array generated from records.h, never written.
    let host = unsafe { record_host_constants };
    let rust = rust_constants();
    let differ: Vec<String> = rust
        .iter()
        .zip(host)
        .filter(|((_, ours), c)| ours != c)
        .map(|((name, ours), c)| format!("{name}: records.rs {ours}, records.h {c}"))
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
    for flag in [
        "MAP_KNOWN_",
        "PROG_KNOWN_",
        "LINK_KNOWN_",
        "FEATURE_",
        "LINK_TARGET_",
    ] {
        assert!(
            rust.iter().any(|(name, _)| name.starts_with(flag)),
            "no {flag}* constant read from records.h"
        );
    }
    // The other way round: every constant of records.rs is in records.h.
    let source = include_str!("../src/bpf/records.rs");
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("pub const ") else {
            continue;
        };
        let name = rest.split(':').next().unwrap_or(rest).trim();
        assert!(
            rust.iter().any(|(n, _)| *n == name),
            "records.rs defines {name}, records.h does not"
        );
    }
}
