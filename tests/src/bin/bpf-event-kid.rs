//! A loader for the events tests: on a line on stdin it loads three socket
//! filters (evkid_0, evkid_1, evkid_2; different instructions, so different
//! tags), closes evkid_1 at once, prints `<id> <tag hex>` of each, then holds
//! the other two until stdin closes (or it is killed).
use std::io::{BufRead, Read, Write};

use aya_obj::generated::{bpf_attach_type, bpf_prog_type};
use e2e_tests::links::{load_program, prog_id_and_tag};

fn main() -> anyhow::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut go = String::new();
    stdin.read_line(&mut go)?;
    let mut kept = Vec::new();
    let mut lines = String::new();
    for i in 0..3u64 {
        // r0 = i; exit
        let insns = [0x0000_0000_0000_00b7 | (i << 32), 0x0000_0000_0000_0095];
        let fd = load_program(
            bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER,
            bpf_attach_type::BPF_CGROUP_INET_INGRESS,
            &format!("evkid_{i}"),
            &insns,
        )?;
        let (id, tag) = prog_id_and_tag(std::os::fd::AsFd::as_fd(&fd))?;
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        lines.push_str(&format!("{id} {hex}\n"));
        if i == 1 {
            drop(fd); // the last reference: unloaded now
        } else {
            kept.push(fd);
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(lines.as_bytes())?;
    stdout.flush()?;
    let _ = stdin.read_to_end(&mut Vec::new());
    drop(kept);
    Ok(())
}
