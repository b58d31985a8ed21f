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

/// Where and how one signal is sent: from its `OTEL_EXPORTER_OTLP_<SIGNAL>_*`
/// variables, else the general `OTEL_EXPORTER_OTLP_*` ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Transport {
    pub protocol: Protocol,
    /// The endpoint as configured (for the start-up log; the exporter reads it too).
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_[<SIGNAL>_]CERTIFICATE`: the PEM file of the CA(s)
    /// an https collector's certificate must chain to; None: the system's.
    pub certificate: Option<PathBuf>,
    /// `OTEL_EXPORTER_OTLP_[<SIGNAL>_]TIMEOUT`: bound of one request, retries included.
    pub request_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PushConfig {
    /// The metrics' transport (`OTEL_EXPORTER_OTLP_[METRICS_]*`).
    pub metrics: Transport,
    /// The load/unload events as log records (`OTEL_EXPORTER_OTLP_[LOGS_]*`);
    /// None when `OTEL_LOGS_EXPORTER=none` or only a metrics endpoint is set
    /// (its URL names the metrics path: nothing to derive a logs URL from).
    pub logs: Option<Transport>,
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

/// One signal's variables, each before the general one it overrides.
struct SignalVars {
    endpoint: [&'static str; 2],
    protocol: [&'static str; 2],
    certificate: [&'static str; 2],
    timeout: [&'static str; 2],
}

const METRICS_VARS: SignalVars = SignalVars {
    endpoint: [
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ],
    protocol: [
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ],
    certificate: [
        "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ],
    timeout: [
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ],
};

const LOGS_VARS: SignalVars = SignalVars {
    endpoint: [
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ],
    protocol: [
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ],
    certificate: [
        "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ],
    timeout: [
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ],
};

const CLIENT_TLS_VARS: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
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
        let Some(metrics) = transport(&var, &METRICS_VARS)? else {
            return Ok(None);
        };
        // Asking for a client certificate must not silently go without.
        if let Some((variable, value)) = CLIENT_TLS_VARS
            .into_iter()
            .find_map(|name| var(name).map(|v| (name, v)))
        {
            return Err(ConfigError::ClientTls { variable, value });
        }
        let logs = match var("OTEL_LOGS_EXPORTER").as_deref().map(str::trim) {
            None | Some("otlp") => transport(&var, &LOGS_VARS)?,
            Some("none") => None,
            Some(other) => return Err(invalid("OTEL_LOGS_EXPORTER", other, "otlp or none")),
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
            metrics,
            logs,
            temporality,
            interval,
            timeout,
            max_series,
            render,
        }))
    }
}

/// One signal's transport; None without an endpoint.
fn transport(
    var: &impl Fn(&str) -> Option<String>,
    names: &SignalVars,
) -> Result<Option<Transport>, ConfigError> {
    let first = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| var(name).map(|value| (name, value)))
    };
    let Some((endpoint_var, endpoint)) = first(names.endpoint) else {
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
    let certificate = first(names.certificate).map(|(_, path)| PathBuf::from(path));
    let protocol = match first(names.protocol) {
        None => Protocol::HttpProtobuf,
        Some((_, value)) if value.trim() == "grpc" => Protocol::Grpc,
        Some((_, value)) if value.trim() == "http/protobuf" => Protocol::HttpProtobuf,
        Some((name, value)) => return Err(invalid(name, &value, "grpc or http/protobuf")),
    };
    let request_timeout = match first(names.timeout) {
        Some((name, value)) => millis(name, Some(value))?,
        None => None,
    }
    .unwrap_or(Duration::from_secs(10));
    Ok(Some(Transport {
        protocol,
        endpoint,
        certificate,
        request_timeout,
    }))
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
#[path = "config_tests.rs"]
mod tests;
