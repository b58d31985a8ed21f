//! What a walk cannot tell is `null`, and the exporter's own transient fds
//! are not owners, against the real kernel: a map created after the walk a
//! collection uses (its creator may have been passed already) has unknown
//! owners, not none; an fd the exporter holds only to read a map's memory
//! never makes it the map's owner, while a plain fd of the same process does.
use std::{
    os::fd::{AsFd, AsRawFd},
    time::Duration,
};

use bpf_inventory_exporter::{
    bpf::{records::OWNER_KIND_MAP, syscall::map_fd_by_id, transient::TransientFd},
    collect::{KernelSource, Options},
    inventory::{Holders, Inventory},
};
use e2e_tests::{
    have_root,
    holders::{kid_binary, kid_holding},
    Fixture,
};

fn pids(inv: &Inventory, map_id: u32) -> Option<Vec<u32>> {
    let map = inv.map(map_id).expect("map in the inventory");
    map.holders
        .owners
        .as_ref()
        .map(|owners| owners.iter().map(|o| o.pid).collect())
}

#[test]
fn a_map_created_after_the_walk_has_unknown_owners_not_none() {
    if !have_root("a_map_created_after_the_walk_has_unknown_owners_not_none") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kid_bin = kid_binary(tmp.path());
    let old = Fixture::load().expect("load fixture");
    let old_map = old.map_id("fixture_hash");
    // Every collection of this source uses its first walk (an hour young).
    let mut reusing = KernelSource::open(&Options {
        owners_min_interval: Duration::from_secs(3600),
        ..Options::default()
    })
    .expect("open source");
    let me = std::process::id();
    assert_eq!(pids(&reusing.collect(), old_map), Some(vec![me]));

    // Created after that walk began, held by a child only.
    let new = Fixture::load().expect("load fixture");
    let new_map = new.map_id("fixture_hash");
    assert!(new_map > old_map, "map ids increase");
    let kid = kid_holding(
        &kid_bin,
        &[new.map_data("fixture_hash").fd().as_fd().as_raw_fd()],
    );
    drop(new);

    let inv = reusing.collect();
    assert_eq!(
        inv.map(new_map).expect("new map listed").holders,
        Holders::default(),
        "owners, pins and held_by unknown (null), not []"
    );
    assert_eq!(
        pids(&inv, old_map),
        Some(vec![me]),
        "older maps still known"
    );
    // A walk that began after it sees its holder.
    let fresh = KernelSource::open(&Options::default())
        .expect("open source")
        .collect();
    assert_eq!(pids(&fresh, new_map), Some(vec![kid.id()]));
}

#[test]
fn an_fd_opened_to_read_map_memory_is_not_an_owner() {
    if !have_root("an_fd_opened_to_read_map_memory_is_not_an_owner") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kid_bin = kid_binary(tmp.path());
    let fx = Fixture::load().expect("load fixture");
    let map_id = fx.map_id("fixture_hash");
    let kid = kid_holding(
        &kid_bin,
        &[fx.map_data("fixture_hash").fd().as_fd().as_raw_fd()],
    );
    drop(fx);
    let mut source = KernelSource::open(&Options::default()).expect("open source");

    // Open through the whole walk, as a map memory read could be.
    let reading = TransientFd::open(|| Ok((map_fd_by_id(map_id)?, OWNER_KIND_MAP, map_id)))
        .expect("open the map by id");
    assert_eq!(pids(&source.collect(), map_id), Some(vec![kid.id()]));

    // The same process holding a plain fd is an owner.
    let held = map_fd_by_id(map_id).expect("open the map by id");
    let mut both = vec![std::process::id(), kid.id()];
    both.sort_unstable();
    assert_eq!(pids(&source.collect(), map_id), Some(both));
    drop((reading, held));
}
