//! The JSON API of the real binary against the real kernel: the fixture's
//! objects with exact values and their relations both ways, exact filters and
//! paging, JSON errors, and schemathesis against the served OpenAPI document.
//! Other tests may load fixtures at the same time: assertions on lists check
//! membership and that every item matches, never "only ours".
use std::{collections::BTreeSet, path::PathBuf, process::Command, time::Duration};

use aya::maps::HashMap;
use e2e_tests::{
    child::ChildGuard, exporter_binary, have_root, Fixture, FIXTURE_PROG, FIXTURE_SHORT_PROG,
};
use serde_json::{json, Value};

// A crate root's `mod x;` looks beside it; tests/tests/support/ belongs to other tests.
#[path = "api/support.rs"]
mod api_support;
use api_support::Server;

fn ids(list: &Value) -> Vec<u32> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|o| o["id"].as_u64().expect("id") as u32)
        .collect()
}

fn sorted(ids: impl IntoIterator<Item = u32>) -> Vec<u32> {
    ids.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn fixture_objects_and_their_relations() {
    if !have_root("fixture_objects_and_their_relations") {
        return;
    }
    let mut fx = Fixture::load().expect("load fixture");
    {
        let mut hash: HashMap<_, u32, u64> =
            HashMap::try_from(fx.ebpf.map_mut("fixture_hash").expect("fixture_hash")).unwrap();
        for k in 0..9u32 {
            hash.insert(k, 1, 0).unwrap();
        }
        hash.remove(&3).unwrap();
    }
    let (hash_id, array_id) = (fx.map_id("fixture_hash"), fx.map_id("fixture_array"));
    let prog_id = fx.program_id(FIXTURE_PROG);
    let server = Server::start().expect("start exporter");

    let reply = server
        .request("GET", &format!("/api/v1/maps/{hash_id}"))
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let detail = reply.json();
    // The body has nanoseconds, X-Collected-At milliseconds, Last-Modified seconds.
    let collected_at = detail["collected_at"].as_str().unwrap();
    let header_time = reply.header("x-collected-at").unwrap();
    assert_eq!(
        header_time.len(),
        "2026-01-02T03:04:05.678Z".len(),
        "{header_time}"
    );
    assert!(
        collected_at.starts_with(header_time.trim_end_matches('Z')),
        "{collected_at} vs {header_time}"
    );
    let last_modified = reply.header("last-modified").unwrap();
    let hms = &collected_at[11..19];
    assert!(
        last_modified.ends_with(&format!(" {hms} GMT")),
        "{last_modified} vs {collected_at}"
    );
    let map = &detail["map"];
    assert_eq!(map["id"], hash_id);
    assert_eq!(
        (
            &map["name"],
            &map["type"],
            &map["key_size"],
            &map["value_size"]
        ),
        (&json!("fixture_hash"), &json!("hash"), &json!(4), &json!(8))
    );
    assert_eq!(
        (&map["max_entries"], &map["flags"], &map["entries"]),
        (&json!(1000), &json!(0), &json!(8))
    );
    assert_eq!(
        (&map["frozen"], &map["self"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(
        ids(&detail["programs"]),
        [prog_id],
        "programs using fixture_hash"
    );
    assert_eq!(detail["programs"][0]["name"], FIXTURE_PROG);

    let array = server.json(&format!("/api/v1/maps/{array_id}"));
    assert_eq!(
        (&array["map"]["type"], &array["map"]["entries"]),
        (&json!("array"), &json!(16))
    );
    assert_eq!(ids(&array["programs"]), [prog_id]);

    let detail = server.json(&format!("/api/v1/programs/{prog_id}"));
    let program = &detail["program"];
    assert_eq!(
        (&program["name"], &program["type"], &program["attach_to"]),
        (
            &json!(FIXTURE_PROG),
            &json!("tracing"),
            &json!("bpf_iter_bpf_map")
        )
    );
    assert_eq!(
        program["tag"],
        format!("{:016x}", fx.program_tag(FIXTURE_PROG))
    );
    assert_eq!(
        (&program["self"], &program["uid"]),
        (&json!(false), &json!(0))
    );
    let expected_maps = sorted([hash_id, array_id]);
    let map_ids: Vec<u32> = serde_json::from_value(program["map_ids"].clone()).unwrap();
    assert_eq!(sorted(map_ids), expected_maps);
    assert_eq!(
        ids(&detail["maps"]),
        expected_maps,
        "the program's two maps, expanded"
    );
    let names: BTreeSet<&str> = detail["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["fixture_array", "fixture_hash"]));
    let links = detail["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "the fixture's one iterator link: {links:?}");
    let link = &links[0];
    assert_eq!(
        (&link["type"], &link["attach_type"], &link["prog_id"]),
        (&json!("iter"), &json!("trace_iter"), &json!(prog_id))
    );
    assert_eq!(link["target"], json!({"kind": "name", "name": "bpf_map"}));

    let link_id = link["id"].as_u64().unwrap();
    let link_detail = server.json(&format!("/api/v1/links/{link_id}"));
    assert_eq!(&link_detail["link"], link);
    assert_eq!(link_detail["program"]["id"], prog_id);
    assert_eq!(link_detail["program"]["name"], FIXTURE_PROG);

    let short = server.json(&format!(
        "/api/v1/programs/{}",
        fx.program_id(FIXTURE_SHORT_PROG)
    ));
    assert_eq!(short["program"]["name"], FIXTURE_SHORT_PROG);
    assert_eq!((&short["maps"], &short["links"]), (&json!([]), &json!([])));
}

#[test]
fn filters_and_paging_are_exact() {
    if !have_root("filters_and_paging_are_exact") {
        return;
    }
    let fx = Fixture::load().expect("load fixture");
    let server = Server::start().expect("start exporter");
    let (hash_id, np_id) = (fx.map_id("fixture_hash"), fx.map_id("fixture_hash_np"));
    let prog_id = fx.program_id(FIXTURE_PROG);

    let by_id = server.json(&format!("/api/v1/maps?id={hash_id}"));
    assert_eq!(
        (ids(&by_id["items"]), &by_id["total"]),
        (vec![hash_id], &json!(1))
    );
    let wrong_type = server.json(&format!("/api/v1/maps?id={hash_id}&type=array"));
    assert_eq!(
        (ids(&wrong_type["items"]), &wrong_type["total"]),
        (vec![], &json!(0))
    );
    let by_prog = server.json(&format!("/api/v1/links?prog_id={prog_id}"));
    assert_eq!(by_prog["total"], 1);
    assert_eq!(by_prog["items"][0]["prog_id"], prog_id);
    let by_name = server.json(&format!("/api/v1/links?name={FIXTURE_PROG}&type=iter"));
    assert!(ids(&by_name["items"]).contains(&ids(&by_prog["items"])[0]));

    let hashes = server.json("/api/v1/maps?type=hash&name=fixture_hash&limit=1000");
    let items = hashes["items"].as_array().unwrap();
    assert_eq!(hashes["total"], items.len());
    assert!(items
        .iter()
        .all(|m| m["type"] == "hash" && m["name"].as_str().unwrap().contains("fixture_hash")));
    let found = ids(&hashes["items"]);
    assert!(
        found.contains(&hash_id) && found.contains(&np_id),
        "{found:?}"
    );
    assert!(!found.contains(&fx.map_id("fixture_lru")));

    let tracing = server.json("/api/v1/programs?type=tracing&name=fixture_");
    let found = ids(&tracing["items"]);
    assert!(found.contains(&prog_id) && found.contains(&fx.program_id(FIXTURE_SHORT_PROG)));

    // Pages of 2 put together give the whole list, in id order. Another
    // test's objects may come or go meanwhile: then the totals differ; retry.
    let consistent = (0..5).any(|_| {
        let all = server.json("/api/v1/maps?name=fixture_&limit=1000");
        let total = all["total"].as_u64().unwrap();
        let all_ids = ids(&all["items"]);
        assert_eq!(all_ids, sorted(all_ids.clone()), "id order");
        let mut paged = Vec::new();
        for offset in (0..=total).step_by(2) {
            let page = server.json(&format!(
                "/api/v1/maps?name=fixture_&limit=2&offset={offset}"
            ));
            if page["total"] != total {
                return false;
            }
            assert_eq!(
                (&page["limit"], &page["offset"]),
                (&json!(2), &json!(offset))
            );
            paged.extend(ids(&page["items"]));
        }
        assert_eq!(paged, all_ids);
        assert!(
            all_ids.contains(&hash_id) && all_ids.len() >= 6,
            "{all_ids:?}"
        );
        true
    });
    assert!(consistent, "the map list kept changing between pages");
}

#[test]
fn bad_requests_are_json_errors() {
    if !have_root("bad_requests_are_json_errors") {
        return;
    }
    let server = Server::start().expect("start exporter");
    let error = |code: &str, message: &str| json!({"error": {"code": code, "message": message}});
    for (method, path, status, body) in [
        ("GET", "/api/v1/maps/x1", 400, error("invalid_parameter", r#"invalid value "x1" for `id`: expected a decimal integer"#)),
        ("GET", "/api/v1/programs?limit=5000", 400, error("invalid_parameter", r#"invalid value "5000" for `limit`: expected an integer from 1 to 1000"#)),
        ("GET", "/api/v1/links?sort=id", 400, error("unknown_parameter", "unknown query parameter `sort`: this endpoint accepts type, name, id, prog_id, comm, pod_uid, container_id, pid, limit, offset")),
        ("GET", "/api/v1/programs/4294967295", 404, Value::Null),
        ("GET", "/api/v1/maps/list", 400, error("invalid_parameter", r#"invalid value "list" for `id`: expected a decimal integer"#)),
        ("GET", "/api/v2/maps", 404, Value::Null),
        ("GET", "/api/v1/map", 404, error("route_not_found", "no API route /api/v1/map: see /api/v1/openapi.json")),
        ("POST", "/api/v1/inventory", 405, error("method_not_allowed", "method POST is not allowed here: use GET")),
    ] {
        let reply = server.request(method, path).unwrap();
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        if body.is_null() {
            continue;
        }
        assert_eq!(reply.json(), body, "{method} {path}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    let unknown = server
        .request("GET", "/api/v1/programs/4294967295")
        .unwrap()
        .json();
    assert_eq!(unknown["error"]["code"], "not_found");
    let unknown_type = server.request("GET", "/api/v1/maps?type=hashmap").unwrap();
    assert_eq!(unknown_type.status, 400);
    let message = unknown_type.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(
            r#"invalid value "hashmap" for `type`: not a map type; known: unspec, hash,"#
        ),
        "{message}"
    );
}

/// `/api/v1/inventory` is the `dump --format json` document: the same keys,
/// and the fixture's objects with the same values (two collections apart).
#[test]
fn inventory_is_the_dump_document() {
    if !have_root("inventory_is_the_dump_document") {
        return;
    }
    let fx = Fixture::load().expect("load fixture");
    let server = Server::start().expect("start exporter");
    let served = server.json("/api/v1/inventory");
    let out = Command::new(exporter_binary())
        .args(["dump", "--format", "json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dumped: Value = serde_json::from_slice(&out.stdout).expect("dump JSON");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&served), keys(&dumped));
    let find = |doc: &Value, list: &str, id: u32| {
        doc[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{list} {id} missing"))
    };
    for name in ["fixture_hash", "fixture_array", "fixture_ringbuf"] {
        let id = fx.map_id(name);
        let (mut a, mut b) = (find(&served, "maps", id), find(&dumped, "maps", id));
        // Map memory comes from the server's background cache: compared by the oracle test.
        a["memory_bytes"] = Value::Null;
        b["memory_bytes"] = Value::Null;
        assert_eq!(a, b, "{name}");
    }
    let id = fx.program_id(FIXTURE_PROG);
    let (mut a, mut b) = (find(&served, "programs", id), find(&dumped, "programs", id));
    // Boot time to wall clock is re-derived per collection: equal within a millisecond.
    let (loaded_a, loaded_b) = (a["loaded_at"].take(), b["loaded_at"].take());
    let (loaded_a, loaded_b) = (loaded_a.as_str().unwrap(), loaded_b.as_str().unwrap());
    assert_eq!(loaded_a[..11], loaded_b[..11], "same day");
    assert!(
        (seconds_of_day(loaded_a) - seconds_of_day(loaded_b)).abs() <= 1e-3,
        "{loaded_a} vs {loaded_b}"
    );
    assert_eq!(a, b);
}

/// "2026-01-02T03:04:05.123456789Z" -> seconds since midnight.
fn seconds_of_day(rfc3339: &str) -> f64 {
    rfc3339[11..]
        .trim_end_matches('Z')
        .split(':')
        .map(|part| part.parse::<f64>().expect(rfc3339))
        .fold(0.0, |total, part| total * 60.0 + part)
}

/// The schemathesis virtualenv `./dev test` installs (or $SCHEMATHESIS).
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return Some(path.into());
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/schemathesis-venv/bin/schemathesis");
    path.exists().then_some(path)
}

/// Property-based requests generated from the served OpenAPI document, valid
/// and invalid: no 5xx, every status, header and body conforms to the schema,
/// invalid input is rejected with a 4xx.
#[test]
fn schemathesis_finds_no_server_error_or_schema_violation() {
    if !have_root("schemathesis_finds_no_server_error_or_schema_violation") {
        return;
    }
    let Some(schemathesis) = schemathesis() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis is not installed: ./dev test installs it into target/schemathesis-venv"
        );
        eprintln!(
            "skipping schemathesis: run ./dev test (it installs schemathesis) or set SCHEMATHESIS"
        );
        return;
    };
    let _fx = Fixture::load().expect("load fixture");
    let server = Server::start().expect("start exporter");
    // Its working directory gets a crash cache: keep that out of the tree.
    let work = std::env::temp_dir().join(format!("schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("schemathesis directory");
    let report_path = work.join("report.txt");
    let report = std::fs::File::create(&report_path).expect("report file");
    // About 700 requests in ~30 s on this host; the deadline only catches a hang.
    let mut child = ChildGuard::spawn(
        Command::new(&schemathesis)
            .args([
                "run",
                &format!("http://{}/api/v1/openapi.json", server.address),
            ])
            .args(["--checks", "all", "--max-examples", "30", "--workers", "2"])
            // An endless body: schemathesis reads a response to its end. The
            // stream's answers are checked by the router tests (api::stream_tests).
            .args(["--exclude-path", "/api/v1/events/stream"])
            .args([
                "--request-timeout",
                "20",
                "--no-color",
                "--generation-database",
                "none",
            ])
            .current_dir(&work)
            .stdout(report.try_clone().expect("report file"))
            .stderr(report),
    )
    .expect("run schemathesis");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None; // the guard kills it
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    .map(|status| status.success());
    let text = std::fs::read_to_string(&report_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&work);
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains("=="))
        .unwrap_or("")
        .to_owned();
    eprintln!("schemathesis: {summary}");
    assert_eq!(
        status,
        Some(true),
        "schemathesis failed or ran over 300 s:\n{text}"
    );
}
