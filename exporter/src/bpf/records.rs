//! `#[repr(C)]` mirrors of exporter-ebpf/records.h and their decoding from the
//! byte stream an iterator produces. `tests/record_layout.rs` fails if these
//! drift from the C header.

/// Length of the kernel's object names (`BPF_OBJ_NAME_LEN`).
pub const OBJ_NAME_LEN: usize = 16;
pub const FUNC_NAME_LEN: usize = 128;
pub const ATTACH_NAME_LEN: usize = 64;
pub const LINK_TARGET_LEN: usize = 256;
pub const MAX_USED_MAPS: usize = 64;

pub const MAP_KNOWN_ELEM_COUNT: u32 = 1 << 0;
pub const MAP_KNOWN_FROZEN: u32 = 1 << 1;

pub const PROG_KNOWN_STATS: u32 = 1 << 0;
pub const PROG_KNOWN_VERIFIED_INSNS: u32 = 1 << 1;
pub const PROG_KNOWN_UID: u32 = 1 << 2;
pub const PROG_KNOWN_MISSES: u32 = 1 << 3;

pub const LINK_KNOWN_ATTACH_TYPE: u32 = 1 << 0;
pub const LINK_KNOWN_PATH_CUT: u32 = 1 << 1;

pub const FEATURE_MAP_ELEM_COUNT: u32 = 1 << 0;
pub const FEATURE_MAP_FROZEN: u32 = 1 << 1;
pub const FEATURE_PROG_VERIFIED_INSNS: u32 = 1 << 2;
pub const FEATURE_PROG_UID: u32 = 1 << 3;
pub const FEATURE_PROG_RECURSION_MISSES: u32 = 1 << 4;
pub const FEATURE_LINK_ATTACH_TYPE: u32 = 1 << 5;
pub const FEATURE_PROG_STATS: u32 = 1 << 6;

/// Most CPUs the per-CPU sums cover (`MAX_CPUS`).
pub const MAX_CPUS: usize = 1024;

pub const LINK_TARGET_CGROUP_ID: u32 = 1;
pub const LINK_TARGET_IFINDEX: u32 = 2;
pub const LINK_TARGET_NAME: u32 = 3;
pub const LINK_TARGET_NETNS: u32 = 4;
pub const LINK_TARGET_NETFILTER: u32 = 5;
pub const LINK_TARGET_PERF_EVENT: u32 = 6;
pub const LINK_TARGET_KPROBE_MULTI: u32 = 7;
pub const LINK_TARGET_UPROBE_MULTI: u32 = 8;
pub const LINK_TARGET_MAP: u32 = 9;
pub const LINK_TARGET_DETACHED: u32 = 10;

/// uapi `enum bpf_perf_event_type`, in `target_num[2]` of a perf_event link.
pub const PERF_EVENT_UPROBE: u64 = 1;
pub const PERF_EVENT_URETPROBE: u64 = 2;
pub const PERF_EVENT_KPROBE: u64 = 3;
pub const PERF_EVENT_KRETPROBE: u64 = 4;
pub const PERF_EVENT_TRACEPOINT: u64 = 5;
pub const PERF_EVENT_EVENT: u64 = 6;

pub const OWNER_KIND_MAP: u32 = 1;
pub const OWNER_KIND_PROG: u32 = 2;
pub const OWNER_KIND_LINK: u32 = 3;
pub const COMM_LEN: usize = 16;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MapRecord {
    pub id: u32,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub btf_id: u32,
    pub known: u32,
    pub elem_count: i64,
    pub frozen: u8,
    pub pad: [u8; 7],
    pub name: [u8; OBJ_NAME_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProgRecord {
    pub id: u32,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub uid: u32,
    pub xlated_len: u32,
    pub jited_len: u32,
    pub verified_insns: u32,
    pub pages: u32,
    pub btf_id: u32,
    pub used_map_cnt: u32,
    pub known: u32,
    pub pad0: u32,
    pub load_time_ns: u64,
    pub run_cnt: u64,
    pub run_time_ns: u64,
    pub recursion_misses: u64,
    pub tag: [u8; 8],
    pub gpl_compatible: u8,
    pub pad1: [u8; 7],
    pub name: [u8; OBJ_NAME_LEN],
    pub func_name: [u8; FUNC_NAME_LEN],
    pub attach_to: [u8; ATTACH_NAME_LEN],
    pub map_ids: [u32; MAX_USED_MAPS],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LinkRecord {
    pub id: u32,
    pub link_type: u32,
    pub prog_id: u32,
    pub attach_type: u32,
    pub known: u32,
    pub target_kind: u32,
    /// Meaning per `target_kind`: see records.h.
    pub target_num: [u64; 3],
    pub target_name: [u8; LINK_TARGET_LEN],
}

/// One open fd of a BPF object (`struct owner_record`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OwnerRecord {
    pub tgid: u32,
    pub fd: u32,
    pub kind: u32,
    pub id: u32,
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SupportRecord {
    pub features: u32,
}

/// The `.data.calibration` section: what user space tells the calibration
/// iterators (`struct calibration`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub probe_id: u32,
    pub nr_possible: u32,
    pub local_index: u32,
    pub pad: u32,
    pub cpus: [u32; MAX_CPUS],
}

// SAFETY: repr(C), integers and an integer array only: every bit pattern is valid.
unsafe impl aya::Pod for Calibration {}

/// A record type an iterator writes: plain old data, any bit pattern valid.
///
/// # Safety
/// Implementors must be `#[repr(C)]` structs of integers and integer arrays only.
pub unsafe trait Record: Copy {}
// SAFETY: each is repr(C) and holds only integers and integer arrays.
unsafe impl Record for MapRecord {}
// SAFETY: as above.
unsafe impl Record for ProgRecord {}
// SAFETY: as above.
unsafe impl Record for LinkRecord {}
// SAFETY: as above.
unsafe impl Record for SupportRecord {}
// SAFETY: as above.
unsafe impl Record for OwnerRecord {}

/// The stream's length is not a whole number of records: the object and the
/// exporter disagree on the layout, or the read was cut short.
#[derive(Debug, thiserror::Error)]
#[error("iterator output of {len} bytes is not a whole number of {record_size}-byte records")]
pub struct TruncatedRecords {
    pub len: usize,
    pub record_size: usize,
}

/// Splits `bytes` into records of type `R`, copying each out (the buffer need
/// not be aligned).
pub fn decode<R: Record>(
    bytes: &[u8],
) -> Result<impl Iterator<Item = R> + Clone + '_, TruncatedRecords> {
    let size = size_of::<R>();
    if !bytes.len().is_multiple_of(size) {
        return Err(TruncatedRecords {
            len: bytes.len(),
            record_size: size,
        });
    }
    Ok(bytes.chunks_exact(size).map(|chunk| {
        // SAFETY: `chunk` is exactly size_of::<R>() bytes, R is plain old data
        // (Record), and read_unaligned has no alignment requirement.
        unsafe { chunk.as_ptr().cast::<R>().read_unaligned() }
    }))
}

/// Why a stream of records could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Truncated(#[from] TruncatedRecords),
}

/// Reads `reader` to EOF into `chunk`, read by read, and hands each whole
/// record to `each` as it comes: what is decoded is still in cache, and the
/// stream is never held whole. A record cut by a read waits at the front of
/// `chunk` for its rest; `chunk` must hold at least one record.
pub fn decode_stream<R: Record>(
    mut reader: impl std::io::Read,
    chunk: &mut [u8],
    mut each: impl FnMut(R),
) -> Result<(), StreamError> {
    let size = size_of::<R>();
    assert!(chunk.len() >= size, "a chunk smaller than a record");
    let mut filled = 0;
    loop {
        let n = match reader.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.into()),
        };
        filled += n;
        let whole = filled - filled % size;
        decode::<R>(&chunk[..whole])?.for_each(&mut each);
        chunk.copy_within(whole..filled, 0);
        filled -= whole;
    }
    if filled > 0 {
        return Err(TruncatedRecords {
            len: filled,
            record_size: size,
        }
        .into());
    }
    Ok(())
}

/// A NUL-terminated kernel string, lossily decoded.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_partial_records() {
        let bytes = vec![0u8; size_of::<LinkRecord>() + 3];
        let err = decode::<LinkRecord>(&bytes).err().expect("partial record");
        assert_eq!(err.len, size_of::<LinkRecord>() + 3);
    }

    #[test]
    fn decode_reads_unaligned_records() {
        let mut bytes = vec![0u8; 1 + 2 * size_of::<LinkRecord>()];
        // id of the second record, at an odd address
        let second = 1 + size_of::<LinkRecord>();
        bytes[second..second + 4].copy_from_slice(&7u32.to_ne_bytes());
        let links: Vec<LinkRecord> = decode(&bytes[1..]).unwrap().collect();
        assert_eq!(links.len(), 2);
        assert_eq!((links[0].id, links[1].id), (0, 7));
    }

    /// Hands out at most `step` bytes per read.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn owner_records(n: u32) -> Vec<u8> {
        (0..n)
            .flat_map(|id| {
                let mut record = [0u8; size_of::<OwnerRecord>()];
                // id is the fourth u32 of struct owner_record
                record[12..16].copy_from_slice(&(100 + id).to_ne_bytes());
                record
            })
            .collect()
    }

    #[test]
    fn decode_stream_joins_records_cut_by_reads() {
        let bytes = owner_records(5);
        // 17-byte reads into a 48-byte chunk cut every record somewhere.
        let mut ids = Vec::new();
        let reader = Trickle {
            bytes: &bytes,
            step: 17,
        };
        decode_stream::<OwnerRecord>(reader, &mut [0; 48], |r| ids.push(r.id)).unwrap();
        assert_eq!(ids, [100, 101, 102, 103, 104]);
    }

    #[test]
    fn decode_stream_rejects_a_cut_last_record() {
        let bytes = owner_records(2);
        let reader = Trickle {
            bytes: &bytes[..bytes.len() - 1],
            step: 64,
        };
        let mut seen = 0;
        let err = decode_stream::<OwnerRecord>(reader, &mut [0; 64], |_| seen += 1).unwrap_err();
        assert!(
            matches!(
                err,
                StreamError::Truncated(TruncatedRecords { len: 39, .. })
            ),
            "{err:?}"
        );
        assert_eq!(seen, 1, "the whole record before it was decoded");
    }

    #[test]
    fn c_string_stops_at_nul() {
        assert_eq!(c_string(b"abc\0def"), "abc");
        assert_eq!(c_string(b"full"), "full");
    }
}
