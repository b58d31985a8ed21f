//! The OTLP exporter (opentelemetry-otlp) for the configured protocol, with
//! TLS to the collector: the system's roots, or only the CA(s) of
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`.
use std::sync::{Arc, Mutex};

use opentelemetry_otlp::{
    tonic_types::transport::{Certificate, ClientTlsConfig},
    LogExporter, MetricExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};

use super::{
    config::{Protocol, PushConfig, Transport},
    http_client::{NoResponse, RecordingClient},
};

/// The cause is the `source` (printed by the binary's `{:#}`), not in the message.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot build the OTLP exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot read the collector CA certificate {path} (OTEL_EXPORTER_OTLP_CERTIFICATE)")]
    Certificate {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the collector CA certificate {path} (OTEL_EXPORTER_OTLP_CERTIFICATE) is not usable PEM"
    )]
    CertificatePem {
        path: std::path::PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// The http/protobuf client's cause of a request without response.
pub(super) type NoResponseCause = Arc<Mutex<Option<NoResponse>>>;

/// The metrics exporter for the configured protocol (see [`Client`]).
pub(super) fn exporter(
    config: &PushConfig,
) -> Result<(MetricExporter, Option<NoResponseCause>), PushError> {
    Ok(match Client::new(&config.metrics)? {
        Client::Grpc(tls) => {
            let builder = MetricExporter::builder()
                .with_tonic()
                .with_temporality(config.temporality);
            let exporter = match tls {
                Some(tls) => builder.with_tls_config(tls),
                None => builder,
            }
            .build()?;
            // tonic's status already carries the cause.
            (exporter, None)
        }
        Client::Http(client) => {
            let latest = client.latest();
            let exporter = MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(client)
                .with_temporality(config.temporality)
                .build()?;
            (exporter, Some(latest))
        }
    })
}

/// The log records' exporter for the logs' transport (see [`Client`]).
pub(super) fn log_exporter(
    transport: &Transport,
) -> Result<(LogExporter, Option<NoResponseCause>), PushError> {
    Ok(match Client::new(transport)? {
        Client::Grpc(tls) => {
            let builder = LogExporter::builder().with_tonic();
            let exporter = match tls {
                Some(tls) => builder.with_tls_config(tls),
                None => builder,
            }
            .build()?;
            (exporter, None)
        }
        Client::Http(client) => {
            let latest = client.latest();
            let exporter = LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(client)
                .build()?;
            (exporter, Some(latest))
        }
    })
}

/// What a signal's exporter sends through. TLS for https endpoints: the
/// system's roots, or only the CA(s) of OTEL_EXPORTER_OTLP_CERTIFICATE.
/// For http/protobuf also where its client keeps the cause of a request
/// without response. Endpoint and headers the exporter reads itself.
enum Client {
    /// tonic's TLS configuration, when a CA is given.
    Grpc(Option<ClientTlsConfig>),
    Http(RecordingClient),
}

impl Client {
    fn new(transport: &Transport) -> Result<Self, PushError> {
        let ca = match &transport.certificate {
            Some(path) => Some(
                std::fs::read(path).map_err(|source| PushError::Certificate {
                    path: path.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        Ok(match transport.protocol {
            Protocol::Grpc => Client::Grpc(
                ca.map(|pem| ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))),
            ),
            Protocol::HttpProtobuf => {
                // reqwest takes the process' rustls provider: ring, as tonic uses.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut client = reqwest::Client::builder().timeout(transport.request_timeout);
                if let (Some(pem), Some(path)) = (&ca, &transport.certificate) {
                    let certificates =
                        reqwest::Certificate::from_pem_bundle(pem).map_err(|source| {
                            PushError::CertificatePem {
                                path: path.clone(),
                                source,
                            }
                        })?;
                    client = client.tls_certs_only(certificates);
                }
                Client::Http(RecordingClient::new(
                    client.build().map_err(PushError::HttpClient)?,
                ))
            }
        })
    }
}
