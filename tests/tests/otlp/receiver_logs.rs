//! The test receiver's logs side: gRPC `LogsService` and HTTP `/v1/logs`,
//! each request recorded and answered OK (never, when told never).
use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    logs_service_server::LogsService, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;

use super::{Grpc, Shared};

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        if !self.0.record_logs(request.into_inner(), &headers, true) {
            std::future::pending::<()>().await;
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

pub(super) async fn http_logs(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let request = match ExportLogsServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if !shared.record_logs(request, &headers, false) {
        std::future::pending::<()>().await;
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportLogsServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}
