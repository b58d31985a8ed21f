//! The page written on two threads is the page written on one.
use super::*;
use crate::testing::{sample_inventory, sample_stats as stats};

#[test]
fn large_pages_written_in_parallel_equal_the_serial_page() {
    let mut inventory = sample_inventory();
    let template = inventory.maps[0].clone();
    inventory.maps = (0..PARALLEL_FROM_MAPS as u32 + 500)
        .map(|i| {
            let mut m = template.clone();
            m.id = i + 1;
            m.name = format!("map_{i}");
            m.entries = (i % 3 != 0).then_some(u64::from(i));
            m
        })
        .collect();
    let server = server_stats();
    for format in [Format::Text, Format::OpenMetrics] {
        let options = RenderOptions::default();
        let mut parallel = String::new();
        render_page_into(
            &mut parallel,
            &inventory,
            &stats(),
            Some(&server),
            &options,
            format,
        );
        let mut serial = Page {
            out: String::new(),
            format,
        };
        serial.head(&inventory, &options);
        serial.tail(&inventory, &stats(), Some(&server), &options);
        assert_eq!(parallel, serial.out, "{format:?}");
        assert!(parallel.contains("bpf_map_entries{id=\"2\",name=\"map_1\",type=\"hash\"} 1\n"));
    }
}

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
    }
}

#[test]
fn the_server_section_comes_before_the_openmetrics_eof() {
    let mut page = String::new();
    let server = server_stats();
    render_page_into(
        &mut page,
        &sample_inventory(),
        &stats(),
        Some(&server),
        &RenderOptions::default(),
        Format::OpenMetrics,
    );
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
        tail.ends_with(
            "bpf_exporter_http_requests_rejected_total{reason=\"overloaded\"} 3\n\
         bpf_exporter_http_requests_rejected_total{reason=\"invalid_request\"} 0\n# EOF\n"
        ),
        "{tail}"
    );
}
