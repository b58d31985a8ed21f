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
    for format in [Format::Text, Format::OpenMetrics] {
        let options = RenderOptions::default();
        let parallel = render_metrics(&inventory, &stats(), &options, format);
        let mut serial = Page {
            out: String::new(),
            format,
        };
        serial.head(&inventory, &options);
        serial.tail(&inventory, &stats(), &options);
        assert_eq!(parallel, serial.out, "{format:?}");
        assert!(parallel.contains("bpf_map_entries{id=\"2\",name=\"map_1\",type=\"hash\"} 1\n"));
    }
}
