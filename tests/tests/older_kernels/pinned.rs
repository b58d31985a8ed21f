//! `pin` and `cat` of the pinned files in the 5.10 guest against its `dump`.
use bpf_inventory_exporter::inventory::Inventory;
use e2e_tests::FIXTURE_PROG;

use super::Guest;

/// `pin` then `cat` on 5.10: no links.debug (no bpf_link iterator); every
/// map and program of `dump` but the exporter's own (gone with the `dump`
/// process) with the same values (before 6.6 the kernel keeps no element
/// counter: cur_entries is "-").
pub fn pinned_files_agree_with_dump(guest: &Guest, inv: &Inventory) {
    use bpf_inventory_exporter::bpf::pin::FILES;
    use e2e_tests::pinned::{known, map_line, prog_line, rows};

    assert_eq!(guest.section("pinned_files").0, "maps.debug\nprogs.debug\n");
    let maps = rows(&guest.section("pinned_maps").0, FILES[0].header);
    for m in inv.maps.iter().filter(|m| !m.is_self) {
        let entries = known(m.entries);
        let kv = (m.key_size, m.value_size);
        let line = map_line(m.id, &m.name, m.max_entries, "-", &m.map_type, &entries, kv);
        assert_eq!(maps.get(&m.id), Some(&line));
    }
    let progs = rows(&guest.section("pinned_progs").0, FILES[1].header);
    for p in inv.programs.iter().filter(|p| !p.is_self) {
        let (runs, ns) = (known(p.run_count), known(p.run_time_ns));
        let attach = p.attach_to.as_deref().unwrap_or("");
        let line = prog_line(
            p.id,
            &p.name,
            attach,
            &p.prog_type,
            (&runs, &ns),
            p.memory_bytes,
        );
        assert_eq!(progs.get(&p.id), Some(&line));
    }
    assert!(inv.maps.len() >= 6 && inv.programs.iter().any(|p| p.name == FIXTURE_PROG));
}
