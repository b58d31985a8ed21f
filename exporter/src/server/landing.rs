//! The landing page at `/`: version and links. It does not read the kernel,
//! so a crawler or a load balancer probing `/` costs no collection.
use axum::{extract::State, response::Html};

use super::AppState;

pub(super) async fn landing(State(state): State<AppState>) -> Html<String> {
    let config = state.config();
    Html(landing_page(
        config.render.version,
        config.render.revision,
        &config.telemetry_path,
    ))
}

fn landing_page(version: &str, revision: &str, telemetry_path: &str) -> String {
    // Relative links: the page also works behind a reverse proxy's path prefix.
    let metrics = escape(telemetry_path.trim_start_matches('/'));
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>BPF inventory exporter</title></head>\n\
         <body><h1>BPF inventory exporter</h1>\n<p>Version {version} (revision {revision}).</p>\n\
         <ul><li><a href=\"{metrics}\">metrics</a></li>\
         <li><a href=\"api/v1/openapi.json\">JSON API (OpenAPI document)</a></li>\
         <li><a href=\"healthz\">healthz</a></li><li><a href=\"readyz\">readyz</a></li></ul>\n</body></html>\n",
        version = escape(version),
        revision = escape(revision),
    )
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

    #[test]
    fn links_the_telemetry_path_and_escapes() {
        let page = landing_page("1.2.3", "<rev>", "/custom/metrics");
        assert!(
            page.contains("Version 1.2.3 (revision &lt;rev&gt;)."),
            "{page}"
        );
        assert!(page.contains("href=\"custom/metrics\""), "{page}");
        assert!(page.contains("href=\"healthz\""), "{page}");
    }
}
