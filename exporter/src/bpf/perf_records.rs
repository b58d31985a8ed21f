//! Decoding of the perf side-band records the BPF events ring carries
//! (include/uapi/linux/perf_event.h): `PERF_RECORD_BPF_EVENT` (a program
//! loaded or freed), `PERF_RECORD_KSYMBOL` (its JIT symbol, which names it)
//! and `PERF_RECORD_LOST`. Every record's own fields are followed by the
//! `sample_id` our attr asks for (`PERF_SAMPLE_TID | PERF_SAMPLE_TIME`):
//! pid, tid, time (not always at the record's end, see `decode`). Pure:
//! bytes in, records out; fields read by offset after a length check.
use perf_event_open_sys::bindings::{
    PERF_BPF_EVENT_PROG_LOAD, PERF_BPF_EVENT_PROG_UNLOAD, PERF_RECORD_BPF_EVENT,
    PERF_RECORD_KSYMBOL, PERF_RECORD_KSYMBOL_TYPE_BPF, PERF_RECORD_LOST,
};

/// `struct perf_event_header`: u32 type, u16 misc, u16 size.
pub const HEADER_SIZE: usize = 8;
/// `struct sample_id` for TID | TIME: u32 pid, u32 tid, u64 time.
const SAMPLE_ID_SIZE: usize = 16;

/// Whether a program came or went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgEventKind {
    Load,
    Unload,
}

/// Who and when, from `sample_id_all`: the task in whose context the kernel
/// emitted the record, and the perf clock (CLOCK_BOOTTIME, see perf_events.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleId {
    pub pid: u32,
    pub tid: u32,
    pub time_ns: u64,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PerfRecord {
    Prog {
        kind: ProgEventKind,
        id: u32,
        tag: [u8; 8],
        sample: SampleId,
    },
    /// A BPF JIT symbol (`bpf_prog_<tag>[_<name>]`) registered or, before
    /// an unload, unregistered: the name of the program event that follows.
    Symbol { name: String, sample: SampleId },
    /// Records the kernel could not write because the ring was full.
    Lost { count: u64, sample: SampleId },
    /// Any other record (`BPF_EVENT` of an unknown type, other ksymbols).
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "perf record of type {record_type} is {size} bytes, shorter than its layout ({needed})"
    )]
    Short {
        record_type: u32,
        size: usize,
        needed: usize,
    },
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(raw)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(raw)
}

/// The record's type and total size from its header (None if `bytes` is shorter than a header).
pub fn header(bytes: &[u8]) -> Option<(u32, usize)> {
    (bytes.len() >= HEADER_SIZE).then(|| (u32_at(bytes, 0), usize::from(u16_at(bytes, 6))))
}

/// Decodes one whole record (header included; `record.len()` is its size).
pub fn decode(record: &[u8]) -> Result<PerfRecord, DecodeError> {
    let Some((record_type, size)) = header(record) else {
        return Err(DecodeError::Short {
            record_type: 0,
            size: record.len(),
            needed: HEADER_SIZE,
        });
    };
    let b = HEADER_SIZE;
    // The fixed part of each record; a symbol's name (NUL-terminated, padded
    // to 8 bytes) follows it.
    let body = match record_type {
        PERF_RECORD_BPF_EVENT | PERF_RECORD_LOST => 16,
        PERF_RECORD_KSYMBOL => {
            let name = record
                .get(b + 16..size.min(record.len()))
                .unwrap_or_default();
            match name.iter().position(|&c| c == 0) {
                Some(nul) => 16 + (nul + 1).next_multiple_of(8),
                // Too short for its name: reported below.
                None => 16 + name.len() + 1,
            }
        }
        _ => return Ok(PerfRecord::Other),
    };
    let needed = HEADER_SIZE + body + SAMPLE_ID_SIZE;
    if size < needed || record.len() < size {
        return Err(DecodeError::Short {
            record_type,
            size: size.min(record.len()),
            needed,
        });
    }
    // sample_id_all writes the sample id right after the body. The record can
    // be longer than that: the kernel (kernel/events/core.c,
    // perf_event_bpf_output and perf_event_ksymbol_output) grows the header
    // it shares among the consumers of one event by the sample id's size for
    // each copy it writes, so with another consumer opened after ours our
    // copy ends in bytes it never wrote (zeros, or old records once the ring
    // wrapped).
    let at = b + body;
    let sample = SampleId {
        pid: u32_at(record, at),
        tid: u32_at(record, at + 4),
        time_ns: u64_at(record, at + 8),
    };
    Ok(match record_type {
        PERF_RECORD_BPF_EVENT => {
            let kind = match u32::from(u16_at(record, b)) {
                PERF_BPF_EVENT_PROG_LOAD => ProgEventKind::Load,
                PERF_BPF_EVENT_PROG_UNLOAD => ProgEventKind::Unload,
                _ => return Ok(PerfRecord::Other),
            };
            let mut tag = [0; 8];
            tag.copy_from_slice(&record[b + 8..b + 16]);
            PerfRecord::Prog {
                kind,
                id: u32_at(record, b + 4),
                tag,
                sample,
            }
        }
        PERF_RECORD_LOST => PerfRecord::Lost {
            count: u64_at(record, b + 8),
            sample,
        },
        _ => {
            let ksym_type = u32::from(u16_at(record, b + 12));
            if ksym_type != PERF_RECORD_KSYMBOL_TYPE_BPF {
                return Ok(PerfRecord::Other);
            }
            let name = &record[b + 16..at];
            let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            PerfRecord::Symbol {
                name: String::from_utf8_lossy(&name[..end]).into_owned(),
                sample,
            }
        }
    })
}

/// A BPF JIT symbol's tag and program name: `bpf_prog_<16 hex>_<name>`, or
/// no name (`bpf_prog_<16 hex>`, a program loaded without one).
pub fn split_symbol(symbol: &str) -> Option<([u8; 8], Option<&str>)> {
    let rest = symbol.strip_prefix("bpf_prog_")?;
    let hex = rest.get(..16)?;
    let mut tag = [0; 8];
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    match &rest[16..] {
        "" => Some((tag, None)),
        name => Some((tag, Some(name.strip_prefix('_')?).filter(|n| !n.is_empty()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(record_type: u32, body: &[u8], sample: SampleId) -> Vec<u8> {
        let size = HEADER_SIZE + body.len() + SAMPLE_ID_SIZE;
        let mut out = Vec::new();
        out.extend(record_type.to_ne_bytes());
        out.extend(0u16.to_ne_bytes());
        out.extend((size as u16).to_ne_bytes());
        out.extend(body);
        out.extend(sample.pid.to_ne_bytes());
        out.extend(sample.tid.to_ne_bytes());
        out.extend(sample.time_ns.to_ne_bytes());
        out
    }

    const SAMPLE: SampleId = SampleId {
        pid: 4242,
        tid: 4243,
        time_ns: 123_456_789,
    };
    const TAG: [u8; 8] = [0x59, 0xf4, 0xa9, 0x31, 0x74, 0x4d, 0xcd, 0xc6];

    /// A `PERF_RECORD_BPF_EVENT` body: `kind` (1 load, 2 unload) of program 1435.
    fn prog_event_body(kind: u16) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(kind.to_ne_bytes());
        body.extend(0u16.to_ne_bytes());
        body.extend(1435u32.to_ne_bytes());
        body.extend(TAG);
        body
    }

    /// A `PERF_RECORD_KSYMBOL` body of a BPF program's JIT symbol.
    fn bpf_symbol_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(0xffff_ffff_c000_0000u64.to_ne_bytes());
        body.extend(64u32.to_ne_bytes());
        body.extend(1u16.to_ne_bytes()); // PERF_RECORD_KSYMBOL_TYPE_BPF
        body.extend(0u16.to_ne_bytes());
        body.extend(b"bpf_prog_59f4a931744dcdc6_bench_p0\0\0\0\0\0\0");
        body
    }

    #[test]
    fn bpf_events_load_and_unload() {
        for (raw, kind) in [(1u16, ProgEventKind::Load), (2, ProgEventKind::Unload)] {
            let bytes = record(PERF_RECORD_BPF_EVENT, &prog_event_body(raw), SAMPLE);
            assert_eq!(
                decode(&bytes),
                Ok(PerfRecord::Prog {
                    kind,
                    id: 1435,
                    tag: TAG,
                    sample: SAMPLE
                })
            );
            assert_eq!(
                decode(&bytes[..bytes.len() - 1]),
                Err(DecodeError::Short {
                    record_type: PERF_RECORD_BPF_EVENT,
                    size: 39,
                    needed: 40
                })
            );
        }
    }

    #[test]
    fn ksymbol_names_and_lost_counts() {
        let bytes = record(PERF_RECORD_KSYMBOL, &bpf_symbol_body(), SAMPLE);
        let PerfRecord::Symbol { name, sample } = decode(&bytes).unwrap() else {
            panic!("not a symbol");
        };
        assert_eq!(
            (name.as_str(), sample),
            ("bpf_prog_59f4a931744dcdc6_bench_p0", SAMPLE)
        );
        assert_eq!(split_symbol(&name), Some((TAG, Some("bench_p0"))));
        assert_eq!(split_symbol("bpf_prog_59f4a931744dcdc6"), Some((TAG, None)));
        assert_eq!(split_symbol("bpf_trampoline_6442"), None);
        // Other kernel symbols (trampolines, dispatchers' text) name no program.
        let mut body = bpf_symbol_body();
        body[12..14].copy_from_slice(&0u16.to_ne_bytes());
        let bytes = record(PERF_RECORD_KSYMBOL, &body, SAMPLE);
        assert_eq!(decode(&bytes), Ok(PerfRecord::Other));

        let mut body = Vec::new();
        body.extend(7u64.to_ne_bytes());
        body.extend(12u64.to_ne_bytes());
        let bytes = record(PERF_RECORD_LOST, &body, SAMPLE);
        assert_eq!(
            decode(&bytes),
            Ok(PerfRecord::Lost {
                count: 12,
                sample: SAMPLE
            })
        );
        assert_eq!(decode(&record(3, &[0; 8], SAMPLE)), Ok(PerfRecord::Other));
    }

    /// `bytes` as the kernel writes it for a consumer opened before another:
    /// its header's size grown by a sample id it never wrote there.
    fn grown(mut bytes: Vec<u8>) -> Vec<u8> {
        let size = u16::from_ne_bytes([bytes[6], bytes[7]]) + SAMPLE_ID_SIZE as u16;
        bytes[6..8].copy_from_slice(&size.to_ne_bytes());
        // What an older record left in the ring there.
        bytes.extend([0xa5; SAMPLE_ID_SIZE]);
        bytes
    }

    #[test]
    fn the_sample_id_is_read_after_the_body_not_at_the_end() {
        let event = grown(record(PERF_RECORD_BPF_EVENT, &prog_event_body(1), SAMPLE));
        assert_eq!(
            decode(&event),
            Ok(PerfRecord::Prog {
                kind: ProgEventKind::Load,
                id: 1435,
                tag: TAG,
                sample: SAMPLE
            })
        );

        let symbol = grown(grown(record(
            PERF_RECORD_KSYMBOL,
            &bpf_symbol_body(),
            SAMPLE,
        )));
        assert_eq!(
            decode(&symbol),
            Ok(PerfRecord::Symbol {
                name: "bpf_prog_59f4a931744dcdc6_bench_p0".into(),
                sample: SAMPLE
            })
        );
        // A name without its NUL is not read past the record.
        let mut body = bpf_symbol_body()[..16].to_vec();
        body.extend(b"bpf_prog_59f4a931");
        let mut cut = record(PERF_RECORD_KSYMBOL, &body, SAMPLE);
        cut.truncate(cut.len() - SAMPLE_ID_SIZE);
        let size = cut.len() as u16;
        cut[6..8].copy_from_slice(&size.to_ne_bytes());
        assert!(matches!(decode(&cut), Err(DecodeError::Short { .. })));
    }
}
