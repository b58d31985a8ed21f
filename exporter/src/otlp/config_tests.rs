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
    assert_eq!(c.metrics.protocol, Protocol::HttpProtobuf);
    assert_eq!(c.temporality, Temporality::Cumulative);
    assert_eq!(c.interval, Duration::from_secs(60));
    assert_eq!(c.timeout, Duration::from_secs(30));
    assert_eq!(c.metrics.request_timeout, Duration::from_secs(10));
    assert_eq!(c.metrics.certificate, None);
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
    assert_eq!(c.metrics.endpoint, "http://b:4317");
    assert_eq!(c.metrics.protocol, Protocol::Grpc);
    assert_eq!(c.temporality, Temporality::Delta);
    assert_eq!(c.interval, Duration::from_millis(1500));
    assert_eq!(c.metrics.certificate, Some(PathBuf::from("/b.pem")));
    assert_eq!(c.metrics.request_timeout, Duration::from_millis(2500));
    // The logs take the general variables where no LOGS_ one is set.
    let logs = c.logs.unwrap();
    assert_eq!(logs.endpoint, "http://a:4318");
    assert_eq!(logs.protocol, Protocol::HttpProtobuf);
    assert_eq!(logs.certificate, Some(PathBuf::from("/a.pem")));
    assert_eq!(logs.request_timeout, Duration::from_millis(2500));
}

#[test]
fn logs_have_their_own_variables_and_can_be_off() {
    let general = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318");
    let c = config(&[
        general,
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://c:4317"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "/c.pem"),
        ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "700"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(c.metrics.endpoint, "http://a:4318");
    assert_eq!(c.metrics.protocol, Protocol::HttpProtobuf);
    let logs = c.logs.unwrap();
    assert_eq!(logs.endpoint, "http://c:4317");
    assert_eq!(logs.protocol, Protocol::Grpc);
    assert_eq!(logs.certificate, Some(PathBuf::from("/c.pem")));
    assert_eq!(logs.request_timeout, Duration::from_millis(700));
    // A metrics URL names the metrics path: no logs endpoint to derive.
    let metrics_only = config(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://b:4318")]);
    assert_eq!(metrics_only.unwrap().unwrap().logs, None);
    let off = config(&[general, ("OTEL_LOGS_EXPORTER", "none")])
        .unwrap()
        .unwrap();
    assert_eq!(off.logs, None);
    for (bad, variable) in [
        (("OTEL_LOGS_EXPORTER", "console"), "OTEL_LOGS_EXPORTER"),
        (
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json"),
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        ),
        (
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "collector:4318"),
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        ),
    ] {
        let error = config(&[general, bad]).unwrap_err();
        assert!(error.to_string().starts_with(variable), "{error}");
    }
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
