//! The values of the command line's flags: each parser refuses, with one
//! line, a value that cannot work, so clap reports it like any bad flag.
use std::{net::SocketAddr, time::Duration};

/// An octal file mode up to 0777 (`pin --mode`).
pub fn parse_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{text:?} is not an octal file mode such as 0400 or 0444"
        )),
    }
}

/// A duration in humantime syntax (500ms, 10s, 1m). Duration flags take
/// values starting with `-` so that a negative one is refused as a value.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    if value.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    humantime::parse_duration(value)
        .map_err(|e| format!("{e} (a duration such as 500ms, 10s or 1m)"))
}

/// A duration of at least `min`.
fn duration_at_least(value: &str, min: Duration) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration < min {
        return Err(format!(
            "must be at least {}",
            humantime::format_duration(min)
        ));
    }
    Ok(duration)
}

/// Shorter than this, a collection on a loaded host would always time out.
pub fn parse_collection_timeout(value: &str) -> Result<Duration, String> {
    duration_at_least(value, Duration::from_millis(100))
}

/// 0s switches the refresh off; otherwise at least 1s (it reads every map's fdinfo).
pub fn parse_refresh_interval(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Ok(duration);
    }
    duration_at_least(value, Duration::from_secs(1)).map_err(|e| e + " (or 0s for off)")
}

/// `top --interval`: under 100ms the view would mostly show collections.
pub fn parse_top_interval(value: &str) -> Result<Duration, String> {
    duration_at_least(value, Duration::from_millis(100))
}

pub fn parse_read_header_timeout(value: &str) -> Result<Duration, String> {
    duration_at_least(value, Duration::from_secs(1))
}

/// An absolute path of plain characters that no other route uses.
pub fn parse_telemetry_path(value: &str) -> Result<String, String> {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
    if !value.starts_with('/') || value == "/" || !plain || value.contains("//") {
        return Err(
            "expected an absolute path such as /metrics (letters, digits, / - _ . ~)".into(),
        );
    }
    if ["/healthz", "/readyz"].contains(&value) || value == "/api" || value.starts_with("/api/") {
        return Err(format!("{value} is taken by another route"));
    }
    Ok(value.to_owned())
}

/// `IP:PORT`, `localhost:PORT` (127.0.0.1) or `:PORT` (all interfaces), as
/// other exporters take `--web.listen-address`.
pub fn parse_listen_address(value: &str) -> Result<SocketAddr, String> {
    let port = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| format!("{port:?} is not a port number (0-65535)"))
    };
    if let Ok(address) = value.parse() {
        return Ok(address);
    }
    match value.rsplit_once(':') {
        Some(("", p)) => Ok(SocketAddr::from(([0, 0, 0, 0], port(p)?))),
        Some(("localhost", p)) => Ok(SocketAddr::from(([127, 0, 0, 1], port(p)?))),
        _ => Err("expected IP:PORT, localhost:PORT or :PORT".into()),
    }
}
