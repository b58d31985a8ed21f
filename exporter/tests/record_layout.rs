//! The Rust record mirrors must match exporter-ebpf/records.h byte for byte:
//! sizes and every field offset, as the C compiler laid them out (layout.c).
use std::mem::{offset_of, size_of};

use bpf_inventory_exporter::bpf::records::{LinkRecord, MapRecord, ProgRecord, SupportRecord};

unsafe extern "C" {
    static record_layout_map: [usize; 12];
    static record_layout_prog: [usize; 22];
    static record_layout_link: [usize; 9];
    static record_layout_support: [usize; 2];
}

#[test]
fn map_record_matches_c() {
    let rust = [
        size_of::<MapRecord>(),
        offset_of!(MapRecord, id),
        offset_of!(MapRecord, map_type),
        offset_of!(MapRecord, key_size),
        offset_of!(MapRecord, value_size),
        offset_of!(MapRecord, max_entries),
        offset_of!(MapRecord, flags),
        offset_of!(MapRecord, btf_id),
        offset_of!(MapRecord, known),
        offset_of!(MapRecord, elem_count),
        offset_of!(MapRecord, frozen),
        offset_of!(MapRecord, name),
    ];
    // SAFETY: a constant array defined in layout.c, never written.
    assert_eq!(rust, unsafe { record_layout_map });
}

#[test]
fn prog_record_matches_c() {
    let rust = [
        size_of::<ProgRecord>(),
        offset_of!(ProgRecord, id),
        offset_of!(ProgRecord, prog_type),
        offset_of!(ProgRecord, expected_attach_type),
        offset_of!(ProgRecord, uid),
        offset_of!(ProgRecord, xlated_len),
        offset_of!(ProgRecord, jited_len),
        offset_of!(ProgRecord, verified_insns),
        offset_of!(ProgRecord, pages),
        offset_of!(ProgRecord, btf_id),
        offset_of!(ProgRecord, used_map_cnt),
        offset_of!(ProgRecord, known),
        offset_of!(ProgRecord, load_time_ns),
        offset_of!(ProgRecord, run_cnt),
        offset_of!(ProgRecord, run_time_ns),
        offset_of!(ProgRecord, recursion_misses),
        offset_of!(ProgRecord, tag),
        offset_of!(ProgRecord, gpl_compatible),
        offset_of!(ProgRecord, name),
        offset_of!(ProgRecord, func_name),
        offset_of!(ProgRecord, attach_to),
        offset_of!(ProgRecord, map_ids),
    ];
    // SAFETY: a constant array defined in layout.c, never written.
    assert_eq!(rust, unsafe { record_layout_prog });
}

#[test]
fn link_record_matches_c() {
    let rust = [
        size_of::<LinkRecord>(),
        offset_of!(LinkRecord, id),
        offset_of!(LinkRecord, link_type),
        offset_of!(LinkRecord, prog_id),
        offset_of!(LinkRecord, attach_type),
        offset_of!(LinkRecord, known),
        offset_of!(LinkRecord, target_kind),
        offset_of!(LinkRecord, target_num),
        offset_of!(LinkRecord, target_name),
    ];
    // SAFETY: a constant array defined in layout.c, never written.
    assert_eq!(rust, unsafe { record_layout_link });
}

#[test]
fn support_record_matches_c() {
    let rust = [
        size_of::<SupportRecord>(),
        offset_of!(SupportRecord, features),
    ];
    // SAFETY: a constant array defined in layout.c, never written.
    assert_eq!(rust, unsafe { record_layout_support });
}
