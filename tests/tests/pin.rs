//! `pin` / `unpin` against the real kernel, each test in a bpffs of its own:
//! after `pin` has exited, `cat` of the pinned files (as root, and as uid 65534
//! with --mode 0444) lists every object of `dump --format json` with the same
//! id, name, type and numbers, the fixture's with exact values, in the kernel
//! preload's format; re-pinning replaces, `unpin` removes exactly what `pin` made.
mod support;

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

use bpf_inventory_exporter::{bpf::pin::FILES, inventory::Inventory};
use e2e_tests::{
    bpftool, bpftool_pinned_array, exporter_binary, have_root,
    pinned::{map_line, prog_line, rows, Bpffs},
    Fixture, FIXTURE_PROG, FIXTURE_SHORT_PROG,
};

fn exporter(args: &[&str]) -> Output {
    Command::new(exporter_binary())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the exporter")
}

fn pin(dir: &Path, extra: &[&str]) {
    let out = exporter(&[&["pin", "--dir", dir.to_str().unwrap()], extra].concat());
    assert!(out.status.success(), "pin: {out:?}");
}

fn dump() -> Inventory {
    let out = exporter(&["dump", "--format", "json"]);
    assert!(out.status.success(), "dump: {out:?}");
    serde_json::from_slice(&out.stdout).expect("inventory json")
}

fn cat(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cat {}: {e}", path.display()))
}

fn cat_as_nobody(path: &Path) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "cat",
        ])
        .arg(path)
        .output()
        .expect("setpriv")
}

/// An object of `dump` missing from a later `cat` must be gone from the kernel.
fn assert_gone(kind: &str, id: u32) {
    let out = Command::new("bpftool")
        .args([kind, "show", "id", &id.to_string()])
        .output()
        .expect("bpftool");
    assert!(!out.status.success(), "{kind} {id} alive but not listed");
}

const HASH_ENTRIES: u32 = 23;

fn fixture_with_entries_and_runs() -> Fixture {
    let mut fx = Fixture::load().expect("load fixture");
    fx.fill_hash(0..HASH_ENTRIES);
    fx.run_program(3);
    fx
}

fn fixture_maps(fx: &Fixture, maps: &BTreeMap<u32, String>) {
    let line = |name: &str| {
        maps.get(&fx.map_id(name))
            .unwrap_or_else(|| panic!("{name}"))
    };
    let id = |name: &str| fx.map_id(name);
    let n = HASH_ENTRIES.to_string();
    assert_eq!(
        line("fixture_hash"),
        &map_line(
            id("fixture_hash"),
            "fixture_hash",
            1000,
            &n,
            "hash",
            &n,
            (4, 8)
        )
    );
    // The kernel's cur_entries is 0 for a map without a counter; ours is
    // every slot of an array and unknown ("-") for a ring buffer.
    assert_eq!(
        line("fixture_array"),
        &map_line(
            id("fixture_array"),
            "fixture_array",
            16,
            "0",
            "array",
            "16",
            (4, 8)
        )
    );
    assert_eq!(
        line("fixture_ringbuf"),
        &map_line(
            id("fixture_ringbuf"),
            "fixture_ringbuf",
            4096,
            "0",
            "ringbuf",
            "-",
            (0, 0)
        )
    );
}

#[test]
fn pinned_files_list_what_dump_lists() {
    if !have_root("pinned_files_list_what_dump_lists") {
        return;
    }
    let stats = bpf_inventory_exporter::bpf::stats::enable().expect("BPF_ENABLE_STATS");
    let fx = fixture_with_entries_and_runs();
    let fs = Bpffs::mount();
    let dir = fs.join("inventory");
    pin(&dir, &["--mode", "0444"]);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for f in &FILES {
        let mode = std::fs::metadata(dir.join(f.file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444, "{}", f.file);
    }

    let inv = dump();
    let [maps_f, progs_f, links_f] = &FILES;
    // The kernel's preload headers, byte for byte, then ours.
    assert!(maps_f
        .header
        .starts_with("  id name             max_entries  cur_entries  "));
    assert!(progs_f
        .header
        .starts_with("  id name             attached   "));
    let maps = rows(&cat(&dir.join(maps_f.file)), maps_f.header);
    let progs = rows(&cat(&dir.join(progs_f.file)), progs_f.header);
    let links = rows(&cat(&dir.join(links_f.file)), links_f.header);

    for m in &inv.maps {
        let Some(line) = maps.get(&m.id) else {
            assert_gone("map", m.id);
            continue;
        };
        let kernel = format!("{:4} {:<16}  {:10}   ", m.id, m.name, m.max_entries as i32);
        assert!(line.starts_with(&kernel), "{line:?} vs {kernel:?}");
        let tail: Vec<&str> = line[kernel.len()..].split_whitespace().collect();
        let sizes = [m.key_size.to_string(), m.value_size.to_string()];
        assert_eq!(tail[1], m.map_type, "{line}");
        assert_eq!(tail[3..], sizes, "{line}");
    }
    fixture_maps(&fx, &maps);

    for p in &inv.programs {
        let Some(line) = progs.get(&p.id) else {
            assert_gone("prog", p.id);
            continue;
        };
        let attach = p.attach_to.as_deref().unwrap_or("");
        let kernel = format!("{:4} {:<16} {attach} ", p.id, p.name);
        assert!(line.starts_with(&kernel), "{line:?} vs {kernel:?}");
        let tail: Vec<&str> = line.split_whitespace().rev().take(4).collect();
        assert_eq!(tail[0], p.memory_bytes.to_string(), "{line}");
        assert_eq!(tail[3], p.prog_type, "{line}");
    }
    let long = fx.program_id(FIXTURE_PROG);
    let bt = bpftool(&["prog", "show", "id", &long.to_string()]).unwrap();
    let (runs, ns) = (
        bt["run_cnt"].as_u64().unwrap(),
        bt["run_time_ns"].as_u64().unwrap(),
    );
    assert!(runs >= 3 && ns > 0, "{bt}");
    let memory = inv.program(long).unwrap().memory_bytes;
    assert_eq!(
        progs[&long],
        prog_line(
            long,
            FIXTURE_PROG,
            "bpf_iter_bpf_map",
            "tracing",
            (&runs.to_string(), &ns.to_string()),
            memory
        )
    );
    let short = fx.program_id(FIXTURE_SHORT_PROG);
    let memory = inv.program(short).unwrap().memory_bytes;
    assert_eq!(
        progs[&short],
        prog_line(
            short,
            FIXTURE_SHORT_PROG,
            "bpf_iter_bpf_prog",
            "tracing",
            ("0", "0"),
            memory
        )
    );
    drop(stats);

    for l in &inv.links {
        let Some(line) = links.get(&l.id) else {
            assert_gone("link", l.id);
            continue;
        };
        let kernel = format!("{:4} {:<14} {:7} ", l.id, l.link_type, l.prog_id);
        assert!(line.starts_with(&kernel), "{line:?} vs {kernel:?}");
        if l.prog_id == long {
            assert_eq!(line, &format!("{kernel}bpf_map"));
        }
    }
    assert!(inv.links.iter().any(|l| l.prog_id == long), "fixture link");

    // Any user reads the same; the fixture's lines do not change between reads.
    for f in &FILES {
        let out = cat_as_nobody(&dir.join(f.file));
        assert!(out.status.success(), "{}: {out:?}", f.file);
        let text = String::from_utf8(out.stdout).unwrap();
        let again = rows(&text, f.header);
        let own = if f.file == "maps.debug" {
            &maps
        } else if f.file == "progs.debug" {
            &progs
        } else {
            &links
        };
        for id in [fx.map_id("fixture_hash"), long, short] {
            assert_eq!(again.get(&id), own.get(&id), "{} id {id}", f.file);
        }
    }

    // Objects made after pinning appear at the next read.
    let later = Fixture::load().expect("second fixture");
    let maps = rows(&cat(&dir.join(maps_f.file)), maps_f.header);
    let progs = rows(&cat(&dir.join(progs_f.file)), progs_f.header);
    assert!(maps.contains_key(&later.map_id("fixture_array")));
    assert!(progs.contains_key(&later.program_id(FIXTURE_PROG)));
    fixture_maps(&fx, &maps);
}

/// The program ids behind the pinned files.
fn pinned_prog_ids(dir: &Path) -> Vec<u64> {
    FILES
        .iter()
        .map(|f| {
            let path = dir.join(f.file);
            bpftool(&["link", "show", "pinned", path.to_str().unwrap()]).unwrap()["prog_id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn pin_twice_leaves_one_set_and_unpin_removes_exactly_it() {
    if !have_root("pin_twice_leaves_one_set_and_unpin_removes_exactly_it") {
        return;
    }
    let fs = Bpffs::mount();
    let root_before = listing(fs.path());
    let dir = fs.join("inv");
    std::fs::create_dir(&dir).unwrap();
    // Something of someone else's in the directory.
    let keep = dir.join("keep");
    bpftool_pinned_array(&keep, "keep").unwrap();

    pin(&dir, &[]);
    let first = pinned_prog_ids(&dir);
    // Default mode: root only, as the kernel's preload files.
    let out = cat_as_nobody(&dir.join("maps.debug"));
    assert!(!out.status.success(), "uid 65534 read a 0400 file");
    assert_eq!(
        std::fs::metadata(dir.join("maps.debug"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o400
    );

    // Re-pinning while readers read: never a missing file.
    let reader = {
        let path = dir.join("progs.debug");
        thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(3);
            let mut reads = 0;
            while Instant::now() < end {
                let text =
                    std::fs::read_to_string(&path).expect("progs.debug missing during re-pin");
                assert!(text.starts_with(FILES[1].header));
                reads += 1;
            }
            reads
        })
    };
    pin(&dir, &[]);
    assert!(reader.join().unwrap() > 0);
    let second = pinned_prog_ids(&dir);
    let expected: Vec<String> = ["keep", "links.debug", "maps.debug", "progs.debug"]
        .map(String::from)
        .to_vec();
    assert_eq!(listing(&dir), expected);
    for id in &first {
        assert!(!second.contains(id));
        // The replaced programs are released once their links are.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("bpftool")
            .args(["prog", "show", "id", &id.to_string()])
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "program {id} of the first pin still loaded"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    let out = exporter(&["unpin", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(listing(&dir), ["keep"]);
    std::fs::remove_file(&keep).unwrap();

    // A directory pin made is removed by unpin; the mount's root is as it was.
    let made = fs.join("made-by-pin");
    pin(&made, &[]);
    assert_eq!(listing(&made).len(), 3);
    let out = exporter(&["unpin", "--dir", made.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(!made.exists());
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(listing(fs.path()), root_before);
}

#[test]
fn bad_directories_are_one_line_errors() {
    if !have_root("bad_directories_are_one_line_errors") {
        return;
    }
    let plain = tempfile::tempdir().unwrap();
    let missing = plain.path().join("a/b");
    let fs = Bpffs::mount();
    // Someone else's maps.debug (bpffs allows a dot only in a directory of mode 000).
    let foreign = fs.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o000)).unwrap();
    let path = foreign.join("maps.debug");
    bpftool_pinned_array(&path, "foreign").unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (args, message) in [
        (
            vec!["pin", "--dir", plain.path().to_str().unwrap()],
            "not a directory on a BPF filesystem",
        ),
        (
            vec!["pin", "--dir", missing.to_str().unwrap()],
            "no such directory",
        ),
        (
            vec!["unpin", "--dir", plain.path().to_str().unwrap()],
            "not a directory on a BPF filesystem",
        ),
        (
            vec!["unpin", "--dir", missing.to_str().unwrap()],
            "no such directory",
        ),
        (
            vec!["pin", "--dir", fs.path().to_str().unwrap()],
            "is the root of a bpffs mount",
        ),
        (
            vec!["pin", "--dir", foreign.to_str().unwrap()],
            "maps.debug is not a file pinned by bpf-inventory-exporter",
        ),
        (
            vec!["unpin", "--dir", foreign.to_str().unwrap()],
            "maps.debug is not a file pinned by bpf-inventory-exporter",
        ),
    ] {
        let out = exporter(&args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(listing(plain.path()).is_empty());
    assert_eq!(listing(&foreign), ["maps.debug"]);
}

#[test]
fn serve_pins_at_start_and_unpins_on_exit() {
    if !have_root("serve_pins_at_start_and_unpins_on_exit") {
        return;
    }
    let fs = Bpffs::mount();
    let dir = fs.join("serve");
    let mut server = support::Server::start(&["--pin", dir.to_str().unwrap()]).unwrap();
    server.wait_ready().unwrap();
    for f in &FILES {
        assert!(cat(&dir.join(f.file)).starts_with(f.header), "{}", f.file);
    }
    // Its own 0400 pins, which no longer open after the capability drop, do
    // not make every object's pins unknown.
    let reply = server.get("/api/v1/inventory", &[]).unwrap();
    let inventory: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let maps = inventory["maps"].as_array().unwrap();
    assert!(!maps.is_empty());
    for map in maps {
        assert!(map["pins"].is_array(), "{map}\n{}", server.logs());
    }
    let (status, _) = server.stop(libc::SIGTERM).unwrap();
    assert_eq!(status.code(), Some(0), "{}", server.logs());
    assert!(!dir.exists(), "{:?}", listing(&dir));
}
