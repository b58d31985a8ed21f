//! The inventory against the real kernel: the fixture's objects appear with
//! exactly the values the test created.
use std::collections::BTreeSet;

use aya::maps::{HashMap, PerCpuHashMap, PerCpuValues};
use bpf_inventory_exporter::{
    collect::{KernelSource, Options},
    inventory::{Inventory, LinkTarget},
};
use e2e_tests::{have_root, Fixture, FIXTURE_PROG, FIXTURE_SHORT_PROG};

fn collect() -> Inventory {
    KernelSource::open(&Options::default())
        .expect("open source")
        .collect()
}

#[test]
fn fixture_objects_have_exact_values() {
    if !have_root("fixture_objects_have_exact_values") {
        return;
    }
    let mut fx = Fixture::load().expect("load fixture");
    {
        let mut hash: HashMap<_, u32, u64> =
            HashMap::try_from(fx.ebpf.map_mut("fixture_hash").unwrap()).unwrap();
        for k in 0..37u32 {
            hash.insert(k + 1, u64::from(k) * 3, 0).unwrap();
        }
        for k in 0..5u32 {
            hash.remove(&(k + 1)).unwrap();
        }
    }
    {
        let mut np: HashMap<_, u64, u32> =
            HashMap::try_from(fx.ebpf.map_mut("fixture_hash_np").unwrap()).unwrap();
        for k in 0..20u64 {
            np.insert(k, 1, 0).unwrap();
        }
    }
    {
        let mut lru: HashMap<_, u32, u64> =
            HashMap::try_from(fx.ebpf.map_mut("fixture_lru").unwrap()).unwrap();
        for k in 0..11u32 {
            lru.insert(k, 7, 0).unwrap();
        }
    }
    {
        let ncpus = aya::util::nr_cpus().unwrap();
        let mut pcpu: PerCpuHashMap<_, u32, u32> =
            PerCpuHashMap::try_from(fx.ebpf.map_mut("fixture_pcpu_hash").unwrap()).unwrap();
        for k in 0..4u32 {
            let values = PerCpuValues::try_from(vec![k; ncpus]).unwrap();
            pcpu.insert(k, values, 0).unwrap();
        }
    }

    let inv = collect();
    assert!(inv.errors.is_empty(), "{:?}", inv.errors);

    let map = |name: &str| {
        inv.map(fx.map_id(name))
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let hash = map("fixture_hash");
    assert_eq!(
        (
            hash.name.as_str(),
            hash.map_type.as_ref(),
            hash.key_size,
            hash.value_size
        ),
        ("fixture_hash", "hash", 4, 8)
    );
    assert_eq!(
        (hash.max_entries, hash.flags, hash.entries),
        (1000, 0, Some(32))
    );
    assert!(hash.btf_id.is_some() && hash.frozen == Some(false) && !hash.is_self);
    let np = map("fixture_hash_np");
    assert_eq!((np.flags, np.key_size, np.value_size), (1, 8, 4)); // BPF_F_NO_PREALLOC
    assert_eq!((np.max_entries, np.entries), (500, Some(20)));
    let lru = map("fixture_lru");
    assert_eq!((lru.map_type.as_ref(), lru.entries), ("lru_hash", Some(11)));
    let pcpu = map("fixture_pcpu_hash");
    assert_eq!(
        (pcpu.map_type.as_ref(), pcpu.entries),
        ("percpu_hash", Some(4))
    );
    let array = map("fixture_array");
    assert_eq!(
        (array.map_type.as_ref(), array.entries),
        ("array", Some(16))
    );
    let ring = map("fixture_ringbuf");
    assert_eq!(
        (ring.map_type.as_ref(), ring.max_entries),
        ("ringbuf", 4096)
    );
    assert_eq!(ring.entries, None, "a ring buffer has no element count");

    let prog_id = fx.program_id(FIXTURE_PROG);
    let prog = inv.program(prog_id).expect("fixture program");
    assert_eq!(
        prog.name, FIXTURE_PROG,
        "full BTF name, not the 16-byte one"
    );
    assert_eq!(prog.prog_type, "tracing");
    assert_eq!(prog.attach_to.as_deref(), Some("bpf_iter_bpf_map"));
    assert_eq!(prog.tag, format!("{:016x}", fx.program_tag(FIXTURE_PROG)));
    let used: BTreeSet<u32> = prog.map_ids.iter().copied().collect();
    let expected: BTreeSet<u32> = [fx.map_id("fixture_hash"), fx.map_id("fixture_array")].into();
    assert_eq!(used, expected);
    assert!(prog.gpl_compatible && prog.btf_id.is_some() && prog.uid == Some(0));
    assert!(prog.xlated_bytes > 0 && prog.jited_bytes > 0 && prog.verified_insns > Some(0));
    assert!(!prog.is_self);
    let short = inv.program(fx.program_id(FIXTURE_SHORT_PROG)).unwrap();
    assert_eq!(
        (short.name.as_str(), short.map_ids.len()),
        ("fixture_short", 0)
    );

    let link = inv
        .links
        .iter()
        .find(|l| l.prog_id == prog_id)
        .expect("fixture link");
    assert_eq!(link.link_type, "iter");
    assert_eq!(link.attach_type.as_deref(), Some("trace_iter"));
    assert_eq!(
        link.target,
        Some(LinkTarget::Name {
            name: "bpf_map".into(),
            map_id: None,
        })
    );

    // The exporter's own objects are marked.
    assert!(inv
        .programs
        .iter()
        .any(|p| p.is_self && p.name == "dump_maps"));
    assert!(inv.maps.iter().any(|m| m.is_self && m.name == "scratch"));
}

/// elem_count is a per-CPU counter read without the kfunc: prove it against
/// a key walk after inserts and deletes.
#[test]
fn hash_entries_match_a_key_walk() {
    if !have_root("hash_entries_match_a_key_walk") {
        return;
    }
    let mut fx = Fixture::load().expect("load fixture");
    let id = fx.map_id("fixture_hash");
    let mut source = KernelSource::open(&Options::default()).expect("open source");
    let mut hash: HashMap<_, u32, u64> =
        HashMap::try_from(fx.ebpf.map_mut("fixture_hash").unwrap()).unwrap();
    for (insert, delete) in [(0u32, 0u32), (250, 0), (600, 100), (1000, 999)] {
        for k in 0..insert {
            hash.insert(k, 1, 0).unwrap();
        }
        for k in 0..delete {
            let _ = hash.remove(&k);
        }
        let walked = hash.keys().count() as u64;
        let reported = source.collect().map(id).and_then(|m| m.entries);
        assert_eq!(reported, Some(walked), "after +{insert} -{delete}");
    }
}

#[test]
fn destroyed_objects_leave_the_inventory() {
    if !have_root("destroyed_objects_leave_the_inventory") {
        return;
    }
    let mut source = KernelSource::open(&Options::default()).expect("open source");
    let fx = Fixture::load().expect("load fixture");
    let (map_id, prog_id) = (fx.map_id("fixture_hash"), fx.program_id(FIXTURE_PROG));
    let before = source.collect();
    assert!(before.map(map_id).is_some() && before.program(prog_id).is_some());
    drop(fx);
    // Map and program frees are deferred (RCU); wait for them, bounded.
    let gone = (0..100).any(|_| {
        let inv = source.collect();
        if inv.map(map_id).is_none() && inv.program(prog_id).is_none() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(gone, "fixture objects still listed after unload");
}

/// Objects created and destroyed while the iterators read: no error, and the
/// objects that live throughout are always there.
#[test]
fn collections_survive_churn() {
    if !have_root("collections_survive_churn") {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};

    let stable = Fixture::load().expect("load fixture");
    let stable_map = stable.map_id("fixture_hash");
    let mut source = KernelSource::open(&Options::default()).expect("open source");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let churn = s.spawn(|| {
            let mut cycles = 0u32;
            while !stop.load(Ordering::Relaxed) && cycles < 500 {
                drop(Fixture::load().expect("load churn fixture"));
                cycles += 1;
            }
            cycles
        });
        for _ in 0..40 {
            let inv = source.collect();
            assert!(inv.errors.is_empty(), "{:?}", inv.errors);
            assert!(inv.map(stable_map).is_some(), "long-lived map missing");
        }
        stop.store(true, Ordering::Relaxed);
        assert!(churn.join().expect("churn thread") > 0);
    });
}
