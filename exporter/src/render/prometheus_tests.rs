//! A page written with the fragments kept from earlier pages is the page
//! written from scratch, byte for byte, whatever changed in between.
use super::*;
use crate::testing::{sample_inventory, sample_stats as stats};

fn server_stats() -> ServerStats {
    ServerStats {
        process: Some(crate::render::server_stats::ProcessStats {
            cpu_seconds: 1.25,
            resident_bytes: 4096,
            virtual_bytes: 8192,
            open_fds: 12,
            max_fds: None,
            start_time_seconds: 1.7e9,
        }),
        rejected: vec![("overloaded", 3), ("invalid_request", 0)],
        web_config: Some(crate::render::server_stats::WebConfigReloads {
            last_successful: false,
            succeeded: 2,
            failed: 1,
        }),
    }
}

/// The sample inventory with `maps` maps and a program per ten maps, sorted
/// by id as collected; names that need escaping among them.
fn inventory(maps: u32) -> Inventory {
    let mut inventory = sample_inventory();
    let map = inventory.maps[0].clone();
    let program = inventory.programs[0].clone();
    inventory.maps = (1..=maps)
        .map(|i| {
            let mut m = map.clone();
            m.id = i;
            m.name = if i % 7 == 0 {
                format!("m\"{i}\\\n")
            } else {
                format!("map_{i}")
            };
            m.entries = (i % 3 != 0).then_some(u64::from(i));
            m
        })
        .collect();
    inventory.programs = (1..=maps / 10)
        .map(|i| {
            let mut p = program.clone();
            p.id = i * 10;
            p.name = format!("prog_{i}");
            p.run_count = (i % 2 == 0).then_some(u64::from(i) * 3);
            p
        })
        .collect();
    inventory
}

/// A page from scratch: no label text kept from an earlier page.
fn scratch(inventory: &Inventory, format: Format) -> String {
    kept(&mut Fragments::default(), inventory, format)
}

fn kept(fragments: &mut Fragments, inventory: &Inventory, format: Format) -> String {
    let mut page = String::new();
    render_page_with(
        &mut page,
        fragments,
        inventory,
        &stats(),
        Some(&server_stats()),
        &RenderOptions::default(),
        format,
    );
    page
}

#[test]
fn pages_from_kept_fragments_equal_pages_from_scratch() {
    let mut fragments = Fragments::default();
    // (step, inventory, fragments reused and made where the order allows a merge)
    type Step = (&'static str, Inventory, Option<(usize, usize)>);
    let mut steps: Vec<Step> = Vec::new();
    let first = inventory(300);
    steps.push(("first page", first.clone(), Some((0, 330))));

    // Only values change: every fragment is reused.
    let mut values = first.clone();
    for m in &mut values.maps {
        m.entries = m.entries.map(|e| e + 1);
        m.memory_bytes = Some(4096);
    }
    for p in &mut values.programs {
        p.run_count = Some(p.run_count.unwrap_or(0) + 5);
        p.run_time_ns = Some(1_000);
        p.memory_bytes *= 2;
        p.verified_insns = None;
    }
    steps.push(("values changed", values.clone(), Some((330, 0))));

    // Objects removed and added (higher ids, as the kernel gives them).
    let mut churn = values.clone();
    churn.maps.retain(|m| m.id % 5 != 0);
    churn.programs.retain(|p| p.id != 100);
    let mut added = inventory(320);
    churn.maps.extend(added.maps.drain(300..));
    churn.programs.extend(added.programs.drain(30..));
    steps.push(("added and removed", churn.clone(), Some((269, 22))));

    // Reloaded with the same id: everything the labels are made of differs.
    let mut reloaded = churn.clone();
    let m = &mut reloaded.maps[0];
    m.name = "m\"1\\\n".into();
    reloaded.maps[1].map_type = "bloom_filter".into();
    reloaded.maps[2].key_size = 16;
    reloaded.maps[3].value_size = 1;
    reloaded.maps[4].flags = 1024;
    reloaded.maps[5].is_self = true;
    reloaded.maps[6].name = "m\"7\\\nx".into();
    let p = &mut reloaded.programs;
    p[0].tag = "ffffffffffffffff".into();
    p[1].attach_to = Some("eth\"1".into());
    p[2].gpl_compatible = !p[2].gpl_compatible;
    p[3].is_self = true;
    p[4].prog_type = "lsm".into();
    p[5].name = "prog_\n".into();
    steps.push((
        "reloaded with the same ids",
        reloaded.clone(),
        Some((278, 13)),
    ));

    // And back to the objects before the reload.
    steps.push(("reloaded back", churn.clone(), Some((278, 13))));

    // Not sorted by id: made afresh, still the same page.
    let mut unsorted = churn.clone();
    unsorted.maps.reverse();
    steps.push(("unsorted", unsorted, None));
    steps.push((
        "empty",
        Inventory {
            maps: vec![],
            programs: vec![],
            ..churn.clone()
        },
        Some((0, 0)),
    ));
    steps.push(("after empty", churn, Some((0, 291))));

    for (step, inventory, counts) in &steps {
        for format in [Format::Text, Format::OpenMetrics] {
            assert_eq!(
                kept(&mut fragments, inventory, format),
                scratch(inventory, format),
                "{step}, {format:?}"
            );
            if let (Some(counts), Format::Text) = (counts, format) {
                assert_eq!(fragments.last_refresh(), *counts, "{step}");
            }
        }
        // The second format's page reuses every fragment of the first.
        if counts.is_some() {
            assert_eq!(fragments.last_refresh().1, 0, "{step}");
        }
        assert_eq!(
            fragments.len(),
            inventory.maps.len() + inventory.programs.len()
        );
    }
    // The escape cases and self labels are in these pages.
    let page = kept(&mut fragments, &reloaded, Format::Text);
    assert!(page.contains("bpf_map_info{id=\"1\",name=\"m\\\"1\\\\\\n\",type=\"hash\",key_size=\"4\",value_size=\"8\",flags=\"0\"} 1\n"), "{page}");
    assert!(page.contains(",self=\"true\"} 1\n"));
}

#[test]
fn the_sample_page_from_fragments_is_the_page_from_scratch() {
    let mut fragments = Fragments::default();
    for _ in 0..2 {
        for format in [Format::Text, Format::OpenMetrics] {
            let inventory = sample_inventory();
            assert_eq!(
                kept(&mut fragments, &inventory, format),
                scratch(&inventory, format)
            );
        }
    }
}

#[test]
fn the_server_section_comes_before_the_openmetrics_eof() {
    let page = scratch(&sample_inventory(), Format::OpenMetrics);
    let tail = page
        .rsplit_once("# TYPE process_cpu_seconds counter\n")
        .unwrap()
        .1;
    assert!(
        tail.starts_with("# UNIT process_cpu_seconds seconds\nprocess_cpu_seconds_total 1.25\n"),
        "{tail}"
    );
    assert!(
        tail.contains("# TYPE process_max_fds gauge\n# HELP") || !tail.contains("process_max_fds "),
        "{tail}"
    );
    assert!(
        tail.contains(
            "bpf_exporter_http_requests_rejected_total{reason=\"overloaded\"} 3\n\
         bpf_exporter_http_requests_rejected_total{reason=\"invalid_request\"} 0\n"
        ),
        "{tail}"
    );
    assert!(
        tail.ends_with(
            "bpf_exporter_web_config_last_reload_successful 0\n\
         # HELP bpf_exporter_web_config_reloads Reloads of --web.config.file (SIGHUP or a file change), by result: success, or failure (broken, empty, or lowering security: the configuration in force stays).\n\
         # TYPE bpf_exporter_web_config_reloads counter\n\
         bpf_exporter_web_config_reloads_total{result=\"success\"} 2\n\
         bpf_exporter_web_config_reloads_total{result=\"failure\"} 1\n# EOF\n"
        ),
        "{tail}"
    );
}

#[test]
fn web_config_reloads_only_with_a_file() {
    let page = |web_config| {
        let mut page = String::new();
        let server = ServerStats {
            web_config,
            ..server_stats()
        };
        let options = RenderOptions::default();
        render_page_with(
            &mut page,
            &mut Fragments::default(),
            &sample_inventory(),
            &stats(),
            Some(&server),
            &options,
            Format::Text,
        );
        page
    };
    let without = page(None);
    assert!(without.contains("# TYPE bpf_exporter_web_config_reloads_total counter\n"));
    assert!(!without.contains("bpf_exporter_web_config_reloads_total{"));
    assert!(!without.contains("\nbpf_exporter_web_config_last_reload_successful "));
    let with = page(server_stats().web_config);
    assert!(with.contains("\nbpf_exporter_web_config_last_reload_successful 0\n"));
    assert!(with.contains("\nbpf_exporter_web_config_reloads_total{result=\"failure\"} 1\n"));
}
