//! Cost of the owners walk (iter/task_file): PROCS child processes each
//! holding FDS fds of one array map; the raw walk is timed with and without
//! them, and the difference divided by the fds they add. The same
//! walk, pinned, is also read by a plain C loop (`walk_loop.c`, built with
//! clang at run time) to compare against what owners add to a collection.
use std::{
    os::{
        fd::{AsRawFd, OwnedFd, RawFd},
        unix::process::CommandExt,
    },
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use bpf_inventory_exporter::{
    bpf::{owners::OwnerWalk, syscall::bpf_fd},
    collect::KernelSource,
};

use crate::stats::median_sorted;

/// Children killed and reaped on drop.
struct Holders(Vec<Child>);

impl Drop for Holders {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// One line per size: walk time with the holders, without, and per added fd;
/// then what the holders add to a whole collection (the walk, grouping the
/// records into owners and setting them on the objects) against what they
/// add to the walk's read alone.
pub fn measure(
    sizes: &[(usize, usize)],
    reps: usize,
    source: &mut KernelSource,
    source_no_owners: &mut KernelSource,
) -> Result<Vec<String>> {
    if sizes.is_empty() {
        return Ok(Vec::new());
    }
    let mut walk = OwnerWalk::load().context("loading the owners walk")?;
    let c_loop = CLoop::new(&mut walk)?;
    let map = array_map()?;
    let mut lines = Vec::new();
    for &(procs, fds) in sizes {
        let [empty, c_empty, collect_empty, _] =
            interleaved(reps, &mut walk, &c_loop, source, source_no_owners)?;
        let holders = spawn(procs, fds, map.as_raw_fd())?;
        let mut records = 0;
        walk.walk(|_| records += 1)?;
        if records < procs * fds {
            bail!(
                "the walk saw {records} BPF fds, expected at least {}",
                procs * fds
            );
        }
        let [full, c_full, collect_full, no_owners] =
            interleaved(reps, &mut walk, &c_loop, source, source_no_owners)?;
        drop(holders);
        let per_fd_us = (full - empty) * 1000.0 / (procs * fds) as f64;
        let line = format!(
            "owners walk, {procs} processes x {fds} map fds: {full:.2} ms (host alone {empty:.2} ms), {per_fd_us:.2} us per added fd incl. its share of process cost; median of {reps}"
        );
        eprintln!("{line}");
        lines.push(line);
        let line = format!(
            "owners in collect, {procs} processes x {fds} map fds: collect {collect_full:.2} ms (host alone {collect_empty:.2} ms): the holders add {:.2} ms to a collection and {:.2} ms to the walk's read; median of {reps}",
            collect_full - collect_empty,
            full - empty
        );
        eprintln!("{line}");
        lines.push(line);
        let line = format!(
            "owners against a C loop, {procs} processes x {fds} map fds: the walk read by a C loop {c_full:.2} ms (host alone {c_empty:.2} ms); owners add {:.2} ms to a collection (collect {collect_full:.2} ms, --no-owners {no_owners:.2} ms) = {:.2}x the C loop's read; median of {reps}",
            collect_full - no_owners,
            (collect_full - no_owners) / c_full,
        );
        eprintln!("{line}");
        lines.push(line);
    }
    Ok(lines)
}

/// The walk pinned on /sys/fs/bpf and the C reader built for it; both
/// removed on drop.
struct CLoop {
    pin: PathBuf,
    dir: PathBuf,
}

impl CLoop {
    fn new(walk: &mut OwnerWalk) -> Result<Self> {
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("bpf-inventory-bench-{id}"));
        std::fs::create_dir_all(&dir)?;
        // No dot: bpffs refuses names with dots.
        let pin = PathBuf::from(format!("/sys/fs/bpf/bpf_inventory_bench_walk_{id}"));
        let c_loop = CLoop { pin, dir };
        let source = c_loop.dir.join("walk_loop.c");
        std::fs::write(&source, include_str!("walk_loop.c"))?;
        let cc = std::env::var("CC").unwrap_or_else(|_| "clang".to_owned());
        let status = Command::new(&cc)
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(c_loop.dir.join("walk_loop"))
            .arg(&source)
            .status()
            .with_context(|| format!("running {cc} for the C loop"))?;
        if !status.success() {
            bail!("{cc} failed to build walk_loop.c: {status}");
        }
        walk.pin(&c_loop.pin)
            .with_context(|| format!("pinning the owners walk at {}", c_loop.pin.display()))?;
        Ok(c_loop)
    }

    /// Ms of one open, read to EOF and close of the pinned walk (after the C
    /// program's own warm-up read).
    fn read_ms(&self) -> Result<f64> {
        let out = Command::new(self.dir.join("walk_loop"))
            .arg(&self.pin)
            .arg("1")
            .output()
            .context("running the C loop")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "the C loop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        text.split_whitespace()
            .next()
            .and_then(|ms| ms.parse().ok())
            .with_context(|| format!("the C loop printed {text:?}"))
    }
}

impl Drop for CLoop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pin);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Medians (ms) of the walk's read, the C loop's read, a collection and a
/// collection without owners, measured in rounds (one of each per round, in
/// a rotating order) so that a slower moment of the machine weighs on all four.
fn interleaved(
    reps: usize,
    walk: &mut OwnerWalk,
    c_loop: &CLoop,
    source: &mut KernelSource,
    source_no_owners: &mut KernelSource,
) -> Result<[f64; 4]> {
    let mut times: [Vec<f64>; 4] = Default::default();
    walk.read_raw()?; // warm-up (the C loop warms up on each run)
    drop((source.collect(), source_no_owners.collect()));
    for round in 0..reps {
        for i in 0..4 {
            let method = (round + i) % 4;
            let ms = match method {
                0 => timed(|| Ok(walk.read_raw()?.len()))?,
                1 => c_loop.read_ms()?,
                2 => timed(|| Ok(source.collect()))?,
                _ => timed(|| Ok(source_no_owners.collect()))?,
            };
            times[method].push(ms);
        }
    }
    Ok(times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        median_sorted(&t)
    }))
}

/// Ms of one `run`; what it returns is freed outside the timing.
fn timed<T>(run: impl FnOnce() -> Result<T>) -> Result<f64> {
    let start = Instant::now();
    let out = run()?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    drop(out);
    Ok(ms)
}

fn spawn(procs: usize, fds: usize, map: RawFd) -> Result<Holders> {
    let mut holders = Holders(Vec::with_capacity(procs));
    for _ in 0..procs {
        let mut command = Command::new("sleep");
        command.arg("600").stdin(Stdio::null());
        // SAFETY: dup2 and fcntl are async-signal-safe and touch only fd numbers.
        unsafe {
            command.pre_exec(move || {
                for i in 0..fds {
                    // dup2 onto the map's own number keeps close-on-exec: clear it.
                    let target = 10 + i as RawFd;
                    if libc::dup2(map, target) < 0 || libc::fcntl(target, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        holders
            .0
            .push(command.spawn().context("spawning a holder")?);
    }
    // Each child holds its fds once it has exec'd sleep.
    for child in &holders.0 {
        while std::fs::read_to_string(format!("/proc/{}/comm", child.id()))
            .is_ok_and(|c| c.trim() != "sleep")
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    Ok(holders)
}

/// A one-element array map (BPF_MAP_CREATE).
fn array_map() -> Result<OwnedFd> {
    let mut attr = [0u32; 8];
    // array, key 4, value 4, 1 entry
    (attr[0], attr[1], attr[2], attr[3]) = (2, 4, 4, 1);
    // SAFETY: attr is a zeroed bpf_attr prefix for BPF_MAP_CREATE (0), integers only.
    unsafe { bpf_fd(0, &mut attr) }.context("BPF_MAP_CREATE")
}
