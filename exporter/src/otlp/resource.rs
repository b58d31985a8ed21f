//! The resource every export carries: the node and the service, with what
//! the standard variables add.
use opentelemetry::KeyValue;
use opentelemetry_sdk::{
    resource::{EnvResourceDetector, TelemetryResourceDetector},
    Resource,
};

/// The resource: the node (host name, OS, kernel release, and `k8s.node.name`
/// from NODE_NAME, as a pod's host name is not its node's), then what
/// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME say (they win), and the
/// exporter's name as `service.name` when neither names the service.
pub(super) fn resource() -> Resource {
    let mut attributes = vec![
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("os.type", "linux"),
    ];
    if let Some((host, release)) = uname() {
        attributes.push(KeyValue::new("host.name", host));
        attributes.push(KeyValue::new("os.version", release));
    }
    if let Some(node) = non_empty_var("NODE_NAME") {
        attributes.push(KeyValue::new("k8s.node.name", node));
    }
    let service_key = opentelemetry::Key::from_static_str("service.name");
    let named_by_attributes = Resource::builder_empty()
        .with_detector(Box::new(EnvResourceDetector::new()))
        .build()
        .get(&service_key)
        .is_some();
    let builder = Resource::builder_empty()
        .with_attributes(attributes)
        .with_detectors(&[
            Box::new(TelemetryResourceDetector),
            Box::new(EnvResourceDetector::new()),
        ]);
    match non_empty_var("OTEL_SERVICE_NAME") {
        Some(name) => builder.with_service_name(name),
        None if named_by_attributes => builder,
        None => builder.with_service_name(env!("CARGO_PKG_NAME")),
    }
    .build()
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The node's host name and kernel release (`uname(2)`).
fn uname() -> Option<(String, String)> {
    let uts = rustix::system::uname();
    let text = |field: &std::ffi::CStr| String::from_utf8_lossy(field.to_bytes()).into_owned();
    Some((text(uts.nodename()), text(uts.release())))
}
