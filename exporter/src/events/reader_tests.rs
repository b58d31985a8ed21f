use super::*;

/// A side-band record with the sample id (pid = tid, time) at its end.
fn record(record_type: u32, body: &[u8], pid: u32, time_ns: u64) -> Vec<u8> {
    let size = 8 + body.len() + 16;
    let mut out = Vec::new();
    out.extend(record_type.to_ne_bytes());
    out.extend(0u16.to_ne_bytes());
    out.extend((size as u16).to_ne_bytes());
    out.extend(body);
    out.extend(pid.to_ne_bytes());
    out.extend(pid.to_ne_bytes());
    out.extend(time_ns.to_ne_bytes());
    out
}

fn symbol(name: &str, pid: u32, time_ns: u64) -> Vec<u8> {
    let mut body = vec![0; 12];
    body.extend(1u16.to_ne_bytes()); // PERF_RECORD_KSYMBOL_TYPE_BPF
    body.extend(0u16.to_ne_bytes());
    body.extend(name.as_bytes());
    body.resize((body.len() + 8) & !7, 0);
    record(17, &body, pid, time_ns)
}

fn prog(kind: u16, id: u32, tag: [u8; 8], pid: u32, time_ns: u64) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(kind.to_ne_bytes());
    body.extend(0u16.to_ne_bytes());
    body.extend(id.to_ne_bytes());
    body.extend(tag);
    record(18, &body, pid, time_ns)
}

/// Kind, program id, name, pid and boot time of each event.
type Summary = (EventKind, u32, Option<String>, Option<u32>, u64);

fn summary(decoded: &[Decoded]) -> Vec<Summary> {
    decoded
        .iter()
        .filter_map(|d| match d {
            Decoded::Event { event, boot_ns } => Some((
                event.kind,
                event.prog_id,
                event.name.clone(),
                event.pid,
                *boot_ns,
            )),
            Decoded::Lost { .. } => None,
        })
        .collect()
}

#[test]
fn cpus_merge_by_time_and_symbols_name_their_program() {
    let a = [0xaa; 8];
    let b = [0xbb; 8];
    let cpu0 = vec![
        symbol("bpf_prog_aaaaaaaaaaaaaaaa_first", 7, 100),
        prog(1, 10, a, 7, 101),
        symbol("bpf_prog_aaaaaaaaaaaaaaaa_first", 9, 300),
        prog(2, 10, a, 9, 301),
    ];
    // A program with a subprogram: the main symbol is the one with its tag.
    let cpu1 = vec![
        symbol("bpf_prog_1111111111111111_helper", 8, 200),
        symbol("bpf_prog_bbbbbbbbbbbbbbbb_second", 8, 200),
        prog(1, 11, b, 8, 201),
    ];
    let decoded = Decoder::default().decode(vec![cpu0, cpu1], 0, 1_000);
    assert_eq!(
        summary(&decoded),
        [
            (EventKind::Load, 10, Some("first".into()), Some(7), 101),
            (EventKind::Load, 11, Some("second".into()), Some(8), 201),
            (EventKind::Unload, 10, Some("first".into()), Some(9), 301),
        ]
    );
    let Decoded::Event { event, .. } = &decoded[1] else {
        panic!("an event");
    };
    assert_eq!(event.tag, "bbbbbbbbbbbbbbbb");
}

#[test]
fn a_zeroed_sample_id_gives_no_pid_and_the_read_time() {
    let a = [0xaa; 8];
    let cpu0 = vec![
        symbol("bpf_prog_aaaaaaaaaaaaaaaa_first", 0, 0),
        prog(1, 10, a, 0, 0),
    ];
    let decoded = Decoder::default().decode(vec![cpu0], 5_000_000_000, 1_000);
    assert_eq!(
        summary(&decoded),
        [(EventKind::Load, 10, Some("first".into()), None, 1_000)]
    );
    let Decoded::Event { event, .. } = &decoded[0] else {
        panic!("an event");
    };
    assert_eq!(
        (event.tid, event.time.timestamp_nanos_opt()),
        (None, Some(5_000_001_000))
    );
}

fn lost(count: u64, time_ns: u64) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(0u64.to_ne_bytes());
    body.extend(count.to_ne_bytes());
    record(2, &body, 0, time_ns)
}

#[test]
fn symbols_before_a_loss_name_no_later_program() {
    let a = [0xaa; 8];
    // A burst of programs of one tag overran the ring after the symbol of
    // program 20's unload: its event and everything up to program 30's
    // symbol were lost.
    let cpu0 = vec![
        symbol("bpf_prog_aaaaaaaaaaaaaaaa_burst", 7, 100),
        prog(1, 20, a, 7, 101),
        symbol("bpf_prog_aaaaaaaaaaaaaaaa_burst", 7, 102),
        lost(5, 200),
        symbol("bpf_prog_aaaaaaaaaaaaaaaa_after", 7, 201),
        prog(1, 30, a, 7, 202),
        // The symbol was lost, the event not: a name unknown, not guessed.
        symbol("bpf_prog_aaaaaaaaaaaaaaaa_burst", 7, 203),
        lost(1, 300),
        prog(1, 31, a, 7, 301),
    ];
    let decoded = Decoder::default().decode(vec![cpu0], 0, 1_000);
    assert_eq!(
        summary(&decoded),
        [
            (EventKind::Load, 20, Some("burst".into()), Some(7), 101),
            (EventKind::Load, 30, Some("after".into()), Some(7), 202),
            (EventKind::Load, 31, None, Some(7), 301),
        ]
    );
    let losses: Vec<u64> = decoded
        .iter()
        .filter_map(|d| match d {
            Decoded::Lost { count, .. } => Some(*count),
            Decoded::Event { .. } => None,
        })
        .collect();
    assert_eq!(losses, [5, 1]);
}

#[test]
fn online_cpus_without_a_ring_are_named() {
    assert_eq!(super::unwatched(&[0, 1, 2, 3], &[0, 1]), vec![2, 3]);
    assert_eq!(super::unwatched(&[0, 1], &[0, 1, 2]), Vec::<u32>::new());
    assert_eq!(super::cpu_list(&[2, 3]), "2,3");
}
