//! The landing page at `/`: version, links and a short inventory summary.
use std::fmt::Write;

use axum::{extract::State, http::HeaderMap, response::Html};

use super::{ApiError, AppState};
use crate::inventory::Inventory;

pub(super) async fn landing(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    let collection = state.collect(&headers).await?;
    Ok(Html(landing_page(
        &collection.inventory,
        state.config().render.version,
    )))
}

fn landing_page(inventory: &Inventory, version: &str) -> String {
    let mut page = String::new();
    // Writing into a String cannot fail.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>BPF inventory exporter</title></head>\n\
         <body><h1>BPF inventory exporter</h1>\n<p>Version {version}. Node {node}, Linux {kernel}.</p>\n\
         <p>Collected {at}: {programs} programs, {maps} maps, {links} links{errors}.</p>\n\
         <ul><li><a href=\"metrics\">metrics</a></li><li><a href=\"healthz\">healthz</a></li>\
         <li><a href=\"readyz\">readyz</a></li></ul>\n</body></html>\n",
        version = escape(version),
        node = escape(&inventory.node.hostname),
        kernel = escape(&inventory.node.kernel_release),
        at = inventory.collected_at.to_rfc3339(),
        programs = inventory.programs.len(),
        maps = inventory.maps.len(),
        links = inventory.links.len(),
        errors = if inventory.errors.is_empty() {
            String::new()
        } else {
            let failed: Vec<&str> = inventory.errors.iter().map(|e| e.collector.as_str()).collect();
            format!(" (failed collectors: {})", failed.join(", "))
        },
    );
    page
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_inventory_with_error;

    #[test]
    fn summary_counts_and_escapes() {
        let mut inventory = sample_inventory_with_error();
        inventory.node.hostname = "<host>".into();
        let page = landing_page(&inventory, "1.2.3");
        assert!(
            page.contains("Version 1.2.3. Node &lt;host&gt;, Linux 6.18.0-test."),
            "{page}"
        );
        assert!(
            page.contains("2 programs, 3 maps, 0 links (failed collectors: links)"),
            "{page}"
        );
        assert!(page.contains("href=\"metrics\""));
    }
}
