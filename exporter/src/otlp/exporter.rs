//! The OTLP exporter (opentelemetry-otlp) for the configured protocol, with
//! TLS to the collector: the system's roots, or only the CA(s) of
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`.
use std::sync::{Arc, Mutex};

use opentelemetry_otlp::{
    tonic_types::transport::{Certificate, ClientTlsConfig},
    MetricExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};

use super::{
    config::{Protocol, PushConfig},
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

/// The OTLP exporter for the configured protocol. TLS for https endpoints:
/// the system's roots, or only the CA(s) of OTEL_EXPORTER_OTLP_CERTIFICATE.
/// For http/protobuf also where its client keeps the cause of a request
/// without response.
#[allow(clippy::type_complexity)]
pub(super) fn exporter(
    config: &PushConfig,
) -> Result<(MetricExporter, Option<Arc<Mutex<Option<NoResponse>>>>), PushError> {
    let ca = match &config.certificate {
        Some(path) => Some(
            std::fs::read(path).map_err(|source| PushError::Certificate {
                path: path.clone(),
                source,
            })?,
        ),
        None => None,
    };
    Ok(match config.protocol {
        Protocol::Grpc => {
            let builder = MetricExporter::builder()
                .with_tonic()
                .with_temporality(config.temporality);
            let exporter = match &ca {
                Some(pem) => builder.with_tls_config(
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                ),
                None => builder,
            }
            .build()?;
            // tonic's status already carries the cause.
            (exporter, None)
        }
        Protocol::HttpProtobuf => {
            // reqwest takes the process' rustls provider: ring, as tonic uses.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut client = reqwest::Client::builder().timeout(config.request_timeout);
            if let (Some(pem), Some(path)) = (&ca, &config.certificate) {
                let certificates =
                    reqwest::Certificate::from_pem_bundle(pem).map_err(|source| {
                        PushError::CertificatePem {
                            path: path.clone(),
                            source,
                        }
                    })?;
                client = client.tls_certs_only(certificates);
            }
            let client = RecordingClient::new(client.build().map_err(PushError::HttpClient)?);
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
