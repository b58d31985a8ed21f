//! Request parsing for `/metrics`: the exposition format from `Accept` and
//! gzip from `Accept-Encoding` (the scrape timeout header: `crate::http`).
use axum::http::{header::ACCEPT_ENCODING, HeaderMap, HeaderValue};

use crate::render::prometheus::Format;

/// OpenMetrics when the client prefers it (or ranks it equal) over the text
/// format; otherwise text 0.0.4. Prometheus 2.x asks for OpenMetrics first.
pub fn negotiate_format(accept: Option<&HeaderValue>) -> Format {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Format::Text;
    };
    let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut q, mut version) = (1.0_f32, None);
        for param in parts {
            match param.split_once('=') {
                Some((key, value)) if key.trim().eq_ignore_ascii_case("q") => {
                    q = value.trim().parse().unwrap_or(0.0);
                }
                Some((key, value)) if key.trim().eq_ignore_ascii_case("version") => {
                    version = Some(value.trim().trim_matches('"').to_owned());
                }
                _ => {}
            }
        }
        match media_type.as_str() {
            "application/openmetrics-text"
                if matches!(version.as_deref(), None | Some("1.0.0" | "0.0.1")) =>
            {
                openmetrics = openmetrics.max(q);
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Whether the client accepts gzip: `gzip` (or `x-gzip`) with a non-zero q,
/// or `*` with a non-zero q when gzip is not named. Identity is always
/// acceptable to us as a fallback, so its q does not matter here.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None::<f32>, None::<f32>);
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for coding in value.split(',') {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, q)| q.trim().parse().unwrap_or(0.0));
            if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(gzip.map_or(q, |g| g.max(q)));
            } else if name == "*" {
                any = Some(q);
            }
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(accept: &str) -> Format {
        negotiate_format(Some(&HeaderValue::from_str(accept).unwrap()))
    }

    #[test]
    fn openmetrics_only_when_preferred() {
        // Prometheus 2.42's scrape Accept header.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(format(prometheus), Format::OpenMetrics);
        assert_eq!(format("application/openmetrics-text"), Format::OpenMetrics);
        assert_eq!(
            format("text/plain;version=0.0.4;q=1, application/openmetrics-text;q=0.5"),
            Format::Text
        );
        assert_eq!(
            format("application/openmetrics-text;version=2.0.0"),
            Format::Text
        );
        assert_eq!(format("application/openmetrics-text;q=0"), Format::Text);
        assert_eq!(format("*/*"), Format::Text);
        assert_eq!(negotiate_format(None), Format::Text);
    }

    #[test]
    fn gzip_only_when_accepted() {
        let accepts = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            accepts_gzip(&headers)
        };
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["gzip, deflate, br"]), "curl --compressed");
        assert!(accepts(&["identity", "GZip;q=0.5"]), "two header lines");
        assert!(accepts(&["x-gzip"]));
        assert!(accepts(&["*"]));
        assert!(accepts(&["br;q=1.0, *;q=0.1"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["br, deflate"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(
            !accepts(&["gzip;q=0, *"]),
            "an explicit gzip;q=0 wins over *"
        );
        assert!(!accepts(&["*;q=0"]));
    }
}
