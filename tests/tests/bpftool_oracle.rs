//! bpftool as the oracle: every object bpftool lists (and still lists after
//! our collection) is in our inventory with the same values.
use std::collections::HashMap;

use bpf_inventory_exporter::{
    collect::{Options, Source},
    inventory::Inventory,
};
use e2e_tests::{bpftool, have_root, Fixture};
use serde_json::Value;

/// bpftool's objects by id, for ids listed both before and after `between`.
fn stable_objects(kind: &str, between: &mut dyn FnMut()) -> HashMap<u64, Value> {
    let list = |kind: &str| -> HashMap<u64, Value> {
        let Value::Array(items) = bpftool(&[kind, "show"]).expect("bpftool") else {
            panic!("bpftool {kind} show: not a list");
        };
        items
            .into_iter()
            .map(|v| (v["id"].as_u64().unwrap(), v))
            .collect()
    };
    let before = list(kind);
    between();
    let after = list(kind);
    before
        .into_iter()
        .filter(|(id, _)| after.contains_key(id))
        .collect()
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("bpftool field {key} in {v}"))
}

#[test]
fn inventory_matches_bpftool() {
    if !have_root("inventory_matches_bpftool") {
        return;
    }
    let fx = Fixture::load().expect("load fixture");
    let fixture_maps: Vec<u32> = [
        "fixture_hash",
        "fixture_lru",
        "fixture_array",
        "fixture_ringbuf",
    ]
    .into_iter()
    .map(|name| fx.map_id(name))
    .collect();
    let mut source = Source::open(&Options::default()).expect("open source");
    let mut inv: Option<Inventory> = None;
    let progs = stable_objects("prog", &mut || inv = Some(source.collect()));
    let inv = inv.expect("collected");
    let mut inv2: Option<Inventory> = None;
    let maps = stable_objects("map", &mut || inv2 = Some(source.collect()));
    let inv2 = inv2.expect("collected");

    assert!(
        progs.len() >= 6,
        "fixture and exporter programs: {}",
        progs.len()
    );
    for (id, bt) in &progs {
        let p = inv
            .program(*id as u32)
            .unwrap_or_else(|| panic!("prog {id} missing"));
        let ctx = format!("prog {id} {}", p.name);
        assert_eq!(p.prog_type, bt["type"].as_str().unwrap(), "{ctx}");
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
        let loaded = p.loaded_at.timestamp();
        assert!(
            (loaded - bt["loaded_at"].as_i64().unwrap()).abs() <= 1,
            "{ctx}"
        );
        if let Some(v) = bt.get("verified_insns") {
            assert_eq!(p.verified_insns.map(u64::from), v.as_u64(), "{ctx}");
        }
    }

    assert!(maps.len() >= 6, "fixture and exporter maps: {}", maps.len());
    for (id, bt) in &maps {
        let m = inv2
            .map(*id as u32)
            .unwrap_or_else(|| panic!("map {id} missing"));
        let ctx = format!("map {id} {}", m.name);
        assert_eq!(m.map_type, bt["type"].as_str().unwrap(), "{ctx}");
        assert_eq!(m.name, bt["name"].as_str().unwrap(), "{ctx}");
        assert_eq!(u64::from(m.key_size), u(bt, "bytes_key"), "{ctx}");
        assert_eq!(u64::from(m.value_size), u(bt, "bytes_value"), "{ctx}");
        assert_eq!(u64::from(m.max_entries), u(bt, "max_entries"), "{ctx}");
        assert_eq!(u64::from(m.flags), u(bt, "flags"), "{ctx}");
        assert_eq!(m.memory_bytes, Some(u(bt, "bytes_memlock")), "{ctx}");
        assert_eq!(m.frozen, Some(u(bt, "frozen") != 0), "{ctx}");
        // Listing all maps, bpftool reuses one bpf_map_info and Linux 6.18
        // copies it in before filling it: a map without BTF shows the previous
        // map's btf_id. Ask for this map alone (unless another test's map
        // is gone by now; the fixture's live until the end).
        match bpftool(&["map", "show", "id", &id.to_string()]) {
            Ok(alone) => assert_eq!(m.btf_id.map(u64::from), alone["btf_id"].as_u64(), "{ctx}"),
            Err(e) => assert!(!fixture_maps.contains(&(*id as u32)), "{ctx}: {e}"),
        }
    }
    for id in &fixture_maps {
        assert!(
            maps.contains_key(&u64::from(*id)),
            "fixture map {id} compared"
        );
    }

    let mut inv3: Option<Inventory> = None;
    let links = stable_objects("link", &mut || inv3 = Some(source.collect()));
    let inv3 = inv3.expect("collected");
    assert!(!links.is_empty(), "the fixture's link");
    for (id, bt) in &links {
        let l = inv3
            .link(*id as u32)
            .unwrap_or_else(|| panic!("link {id} missing"));
        assert_eq!(l.link_type, bt["type"].as_str().unwrap(), "link {id}");
        assert_eq!(u64::from(l.prog_id), u(bt, "prog_id"), "link {id}");
        if let Some(attach) = bt.get("attach_type").and_then(Value::as_str) {
            assert_eq!(l.attach_type.as_deref(), Some(attach), "link {id}");
        }
    }
}

/// Run statistics are per-CPU counters read through the calibrated offsets:
/// they must equal what the kernel sums for bpftool.
#[test]
fn run_statistics_match_bpftool() {
    if !have_root("run_statistics_match_bpftool") {
        return;
    }
    use std::io::Read;

    let mut fx = Fixture::load().expect("load fixture");
    let mut source = Source::open(&Options {
        enable_bpf_stats: true,
        ..Options::default()
    })
    .expect("open source");
    let prog: &mut aya::programs::Iter = fx
        .ebpf
        .program_mut(e2e_tests::FIXTURE_PROG)
        .unwrap()
        .try_into()
        .unwrap();
    for _ in 0..3 {
        let link = prog.attach().unwrap();
        let mut file = prog.take_link(link).unwrap().into_file().unwrap();
        file.read_to_end(&mut Vec::new()).unwrap();
    }
    let id = fx.program_id(e2e_tests::FIXTURE_PROG);
    let inv = source.collect();
    assert!(inv.bpf_stats_enabled);
    let ours = inv.program(id).expect("fixture program");
    let bt = bpftool(&["prog", "show", "id", &id.to_string()]).expect("bpftool");
    let runs = u(&bt, "run_cnt");
    assert!(runs >= 3, "three iterator reads ran the program: {runs}");
    assert_eq!(ours.run_count, Some(runs));
    assert_eq!(ours.run_time_ns, Some(u(&bt, "run_time_ns")));
    assert_eq!(
        ours.recursion_misses,
        Some(bt["recursion_misses"].as_u64().unwrap_or(0))
    );
}
