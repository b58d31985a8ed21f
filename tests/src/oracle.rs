//! The inventory's programs and maps compared field by field with bpftool's
//! JSON (`bpftool -j prog|map show`): on this host and in the older-kernel
//! guests. What only one of them checks (type names bpftool prints as
//! numbers, per-kernel rules, a map's BTF id) stays with it.
use bpf_inventory_exporter::inventory::{Map, Program};
use serde_json::Value;

/// The number bpftool printed under `key`.
pub fn bpftool_u64(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("bpftool field {key} in {v}"))
}

/// Name, tag, licence, uid, sizes, memory, BTF id, maps and load time equal
/// bpftool's, and the verified instructions where bpftool prints them.
/// `ctx` names the program in a failure.
pub fn assert_program_matches(p: &Program, bt: &Value, ctx: &str) {
    let u = bpftool_u64;
    assert_eq!(p.name, bt["name"].as_str().unwrap(), "{ctx}");
    assert_eq!(p.tag, bt["tag"].as_str().unwrap(), "{ctx}");
    assert_eq!(
        p.gpl_compatible,
        bt["gpl_compatible"].as_bool().unwrap(),
        "{ctx}"
    );
    assert_eq!(p.uid.map(u64::from), Some(u(bt, "uid")), "{ctx}");
    assert_eq!(u64::from(p.xlated_bytes), u(bt, "bytes_xlated"), "{ctx}");
    assert_eq!(u64::from(p.jited_bytes), u(bt, "bytes_jited"), "{ctx}");
    assert_eq!(p.memory_bytes, u(bt, "bytes_memlock"), "{ctx}");
    assert_eq!(p.btf_id.map(u64::from), bt["btf_id"].as_u64(), "{ctx}");
    let bt_maps: Vec<u64> = bt["map_ids"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect())
        .unwrap_or_default();
    let ours: Vec<u64> = p.map_ids.iter().map(|&m| u64::from(m)).collect();
    assert_eq!(ours, bt_maps, "{ctx}");
    assert!(
        (p.loaded_at.timestamp() - bt["loaded_at"].as_i64().unwrap()).abs() <= 1,
        "{ctx}"
    );
    // Since 5.16; Debian's bpftool 7.1 does not print it.
    if let Some(v) = bt.get("verified_insns") {
        assert_eq!(p.verified_insns.map(u64::from), v.as_u64(), "{ctx}");
    }
}

/// Type, name, sizes, flags, memory and frozen equal bpftool's.
pub fn assert_map_matches(m: &Map, bt: &Value, ctx: &str) {
    let u = bpftool_u64;
    assert_eq!(m.map_type, bt["type"].as_str().unwrap(), "{ctx}");
    assert_eq!(m.name, bt["name"].as_str().unwrap(), "{ctx}");
    assert_eq!(u64::from(m.key_size), u(bt, "bytes_key"), "{ctx}");
    assert_eq!(u64::from(m.value_size), u(bt, "bytes_value"), "{ctx}");
    assert_eq!(u64::from(m.max_entries), u(bt, "max_entries"), "{ctx}");
    assert_eq!(u64::from(m.flags), u(bt, "flags"), "{ctx}");
    assert_eq!(m.memory_bytes, Some(u(bt, "bytes_memlock")), "{ctx}");
    assert_eq!(m.frozen, Some(u(bt, "frozen") != 0), "{ctx}");
}
