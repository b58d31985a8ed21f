//! The push's configuration from the standard OpenTelemetry SDK variables. The
//! ones read here are checked strictly (a typo is an error at start, not a
//! silent default); endpoint and headers are read by opentelemetry-otlp
//! itself when the exporter is built.
use std::{path::PathBuf, time::Duration};

use opentelemetry_sdk::metrics::Temporality;

use crate::render::prometheus::RenderOptions;

/// The wire protocol (`OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PushConfig {
    pub protocol: Protocol,
    /// The endpoint as configured (for the start-up log; the exporter reads it too).
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE`: the PEM file of the CA(s)
    /// an https collector's certificate must chain to; None: the system's.
    pub certificate: Option<PathBuf>,
    /// `OTEL_EXPORTER_OTLP_[METRICS_]TIMEOUT`: bound of one request, retries included.
    pub request_timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: cumulative by
    /// default; delta and lowmemory make the counters deltas.
    pub temporality: Temporality,
    /// `OTEL_METRIC_EXPORT_INTERVAL`: time between export starts.
    pub interval: Duration,
    /// `OTEL_METRIC_EXPORT_TIMEOUT`: bound of one export, collection and
    /// retries included.
    pub timeout: Duration,
    /// Distinct attribute sets kept per per-object instrument (`--otlp-max-series`).
    pub max_series: usize,
    /// Per-object series or aggregates only, as on `/metrics`.
    pub render: RenderOptions,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable}={value:?}: expected {expected}")]
    Invalid {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{variable}={value:?}: client certificates (mutual TLS) to the collector are not supported by this build")]
    ClientTls {
        variable: &'static str,
        value: String,
    },
}

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
const PROTOCOL_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
];
const CERTIFICATE_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
];
const CLIENT_TLS_VARS: [&str; 4] = [
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
];
const TIMEOUT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
];

impl PushConfig {
    /// The configuration from the process environment; None when no endpoint
    /// is set, the SDK is disabled or the metrics exporter is `none`.
    pub fn from_env(max_series: usize, render: RenderOptions) -> Result<Option<Self>, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok(), max_series, render)
    }

    /// As [`Self::from_env`], with `var` as the environment.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        max_series: usize,
        render: RenderOptions,
    ) -> Result<Option<Self>, ConfigError> {
        // The spec: empty values are treated as unset.
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| var(name).map(|value| (name, value)))
        };
        if let Some(value) = var("OTEL_SDK_DISABLED") {
            if parse_bool("OTEL_SDK_DISABLED", &value)? {
                return Ok(None);
            }
        }
        match var("OTEL_METRICS_EXPORTER").as_deref().map(str::trim) {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(invalid("OTEL_METRICS_EXPORTER", other, "otlp or none"));
            }
        }
        let Some((endpoint_var, endpoint)) = first(ENDPOINT_VARS) else {
            return Ok(None);
        };
        let scheme = endpoint
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => {}
            _ => {
                return Err(invalid(
                    endpoint_var,
                    &endpoint,
                    "a URL like http://collector:4318",
                ))
            }
        }
        // Asking for a client certificate must not silently go without.
        if let Some((variable, value)) = CLIENT_TLS_VARS
            .into_iter()
            .find_map(|name| var(name).map(|v| (name, v)))
        {
            return Err(ConfigError::ClientTls { variable, value });
        }
        let certificate = first(CERTIFICATE_VARS).map(|(_, path)| PathBuf::from(path));
        let protocol = match first(PROTOCOL_VARS) {
            None => Protocol::HttpProtobuf,
            Some((_, value)) if value.trim() == "grpc" => Protocol::Grpc,
            Some((_, value)) if value.trim() == "http/protobuf" => Protocol::HttpProtobuf,
            Some((name, value)) => return Err(invalid(name, &value, "grpc or http/protobuf")),
        };
        let temporality_var = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        let temporality = match var(temporality_var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Temporality::Cumulative,
            Some(v) if v == "cumulative" => Temporality::Cumulative,
            Some(v) if v == "delta" => Temporality::Delta,
            Some(v) if v == "lowmemory" => Temporality::LowMemory,
            Some(v) => {
                return Err(invalid(
                    temporality_var,
                    &v,
                    "cumulative, delta or lowmemory",
                ))
            }
        };
        let request_timeout = match first(TIMEOUT_VARS) {
            Some((name, value)) => millis(name, Some(value))?,
            None => None,
        }
        .unwrap_or(Duration::from_secs(10));
        let interval = millis(
            "OTEL_METRIC_EXPORT_INTERVAL",
            var("OTEL_METRIC_EXPORT_INTERVAL"),
        )?
        .unwrap_or(Duration::from_secs(60));
        let timeout = millis(
            "OTEL_METRIC_EXPORT_TIMEOUT",
            var("OTEL_METRIC_EXPORT_TIMEOUT"),
        )?
        .unwrap_or(Duration::from_secs(30));
        Ok(Some(Self {
            protocol,
            endpoint,
            certificate,
            request_timeout,
            temporality,
            interval,
            timeout,
            max_series,
            render,
        }))
    }
}

fn invalid(variable: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: value.to_owned(),
        expected,
    }
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(variable, value, "true or false")),
    }
}

/// A positive number of milliseconds, as the spec's duration variables are.
fn millis(variable: &'static str, value: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(invalid(
            variable,
            &value,
            "a positive number of milliseconds",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<PushConfig>, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PushConfig::from_vars(
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            1000,
            RenderOptions::default(),
        )
    }

    #[test]
    fn no_endpoint_or_disabled_means_no_push() {
        assert_eq!(config(&[]), Ok(None));
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(config(&[endpoint, ("OTEL_SDK_DISABLED", "true")]), Ok(None));
        assert_eq!(
            config(&[endpoint, ("OTEL_METRICS_EXPORTER", "none")]),
            Ok(None)
        );
        assert!(config(&[endpoint, ("OTEL_SDK_DISABLED", "False")])
            .unwrap()
            .is_some());
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")])
            .unwrap()
            .unwrap();
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        assert_eq!(c.temporality, Temporality::Cumulative);
        assert_eq!(c.interval, Duration::from_secs(60));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.certificate, None);
    }

    #[test]
    fn signal_specific_variables_win() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://b:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1500"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/a.pem"),
            ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/b.pem"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://b:4317");
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.temporality, Temporality::Delta);
        assert_eq!(c.interval, Duration::from_millis(1500));
        assert_eq!(c.certificate, Some(PathBuf::from("/b.pem")));
        assert_eq!(c.request_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_values_are_errors_that_name_the_variable() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        for (bad, variable) in [
            (
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (
                ("OTEL_METRIC_EXPORT_INTERVAL", "10s"),
                "OTEL_METRIC_EXPORT_INTERVAL",
            ),
            (
                ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
                "OTEL_METRIC_EXPORT_INTERVAL",
            ),
            (
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1"),
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            (("OTEL_SDK_DISABLED", "yes"), "OTEL_SDK_DISABLED"),
            (
                ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "both"),
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            ),
        ] {
            let error = config(&[endpoint, bad]).unwrap_err();
            assert!(error.to_string().starts_with(variable), "{error}");
        }
        let mtls = config(&[endpoint, ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem")]).unwrap_err();
        assert!(matches!(mtls, ConfigError::ClientTls { .. }), "{mtls}");
        let bare = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).unwrap_err();
        assert!(bare.to_string().contains("a URL"), "{bare}");
    }
}
