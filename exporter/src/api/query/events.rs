//! The parameters of `/api/v1/events`: strict like the lists' (an unknown or
//! repeated parameter, a bad number or kind is a 400), and their OpenAPI text.
use utoipa::{
    openapi::{
        path::{Parameter, ParameterIn},
        schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type},
    },
    IntoParams,
};

use super::{invalid, pairs, param, parse_limit, short, DEFAULT_LIMIT, MAX_LIMIT};
use crate::{
    api::error::ApiError,
    events::{EventFilter, EventKind},
};

const ACCEPTED: &str = "since, limit, kind, comm, pod_uid, container_id";
const ACCEPTED_BY_STREAM: &str = "since, kind, comm, pod_uid, container_id";

/// What a request for events asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsQuery {
    /// Events with a greater sequence number (0: from the oldest kept).
    pub since: u64,
    pub limit: u32,
    pub filter: EventFilter,
}

impl EventsQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        Self::parse_accepting(raw, ACCEPTED)
    }

    /// The stream's parameters: those of the list but `limit` (it has no end).
    pub fn parse_stream(raw: Option<&str>) -> Result<Self, ApiError> {
        Self::parse_accepting(raw, ACCEPTED_BY_STREAM)
    }

    fn parse_accepting(raw: Option<&str>, accepted: &'static str) -> Result<Self, ApiError> {
        let mut query = EventsQuery {
            since: 0,
            limit: DEFAULT_LIMIT,
            filter: EventFilter::default(),
        };
        for (name, value) in pairs(raw)? {
            match name.as_str() {
                "since" => query.since = parse_u64("since", &value)?,
                "limit" if accepted == ACCEPTED => query.limit = parse_limit(&value)?,
                "kind" => {
                    query.filter.kind = Some(match value.as_str() {
                        "load" => EventKind::Load,
                        "unload" => EventKind::Unload,
                        _ => return Err(invalid("kind", &value, "expected load or unload")),
                    })
                }
                "comm" => query.filter.comm = Some(value),
                "pod_uid" => query.filter.pod_uid = Some(value),
                "container_id" => query.filter.container_id = Some(value),
                _ => {
                    return Err(ApiError::UnknownParameter {
                        name: short(&name),
                        accepted: accepted.into(),
                    })
                }
            }
        }
        Ok(query)
    }
}

/// A sequence number: up to i64::MAX, the largest an OpenAPI int64 holds.
pub(in crate::api) fn parse_u64(name: &'static str, value: &str) -> Result<u64, ApiError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(name, value, "expected a decimal integer"));
    }
    value
        .parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| invalid(name, value, format!("expected at most {}", i64::MAX)))
}

/// OpenAPI description of the events parameters.
pub struct EventsParams;

impl IntoParams for EventsParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let text = || ObjectBuilder::new().schema_type(Type::String).into();
        let int64 = || {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(0))
        };
        vec![
            param(
                "since",
                "Only events with a greater sequence number (the `next_since` of the previous answer); 0 for the oldest kept.",
                int64()
                    .maximum(Some(i64::MAX))
                    .default(Some(0.into()))
                    .into(),
            ),
            param(
                "limit",
                "Most events in one answer.",
                int64()
                    .minimum(Some(1))
                    .maximum(Some(MAX_LIMIT))
                    .default(Some(DEFAULT_LIMIT.into()))
                    .into(),
            ),
            param(
                "kind",
                "Only loads or only unloads.",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["load", "unload"]))
                    .into(),
            ),
            param("comm", "Only events of a process with this exact comm.", text()),
            param("pod_uid", "Only events of a process of the pod with this uid.", text()),
            param(
                "container_id",
                "Only events of a process of the container with this id.",
                text(),
            ),
        ]
    }
}

/// OpenAPI description of the stream's parameters: the list's but `limit`,
/// and the `Last-Event-ID` header.
pub struct EventsStreamParams;

impl IntoParams for EventsStreamParams {
    fn into_params(in_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params: Vec<Parameter> = EventsParams::into_params(in_)
            .into_iter()
            .filter(|p| p.name != "limit")
            .collect();
        if let Some(since) = params.iter_mut().find(|p| p.name == "since") {
            since.description = Some(
                "Start after this sequence number when no `Last-Event-ID` is given; without either, \
                 only events from now on."
                    .into(),
            );
        }
        let mut last_event_id = param(
            "Last-Event-ID",
            "Resume after this event (its `id:` line): the events after it still in the buffer come \
             first. Sent by EventSource clients when they reconnect; takes precedence over `since`.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]{1,18}$"))
                .into(),
        );
        last_event_id.parameter_in = ParameterIn::Header;
        params.push(last_event_id);
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strictly() {
        let query =
            EventsQuery::parse(Some("since=12&limit=5&kind=unload&comm=loader&pod_uid=u")).unwrap();
        assert_eq!(
            query,
            EventsQuery {
                since: 12,
                limit: 5,
                filter: EventFilter {
                    kind: Some(EventKind::Unload),
                    comm: Some("loader".into()),
                    pod_uid: Some("u".into()),
                    container_id: None,
                },
            }
        );
        assert_eq!(EventsQuery::parse(None).unwrap().limit, DEFAULT_LIMIT);
        for (raw, message) in [
            ("kind=loaded", "invalid value \"loaded\" for `kind`: expected load or unload"),
            ("since=-1", "invalid value \"-1\" for `since`: expected a decimal integer"),
            (
                "since=9223372036854775808",
                "invalid value \"9223372036854775808\" for `since`: expected at most 9223372036854775807",
            ),
            ("limit=0", "invalid value \"0\" for `limit`: expected an integer from 1 to 1000"),
            ("pid=1", "unknown query parameter `pid`: this endpoint accepts since, limit, kind, comm, pod_uid, container_id"),
            ("since=1&since=2", "query parameter `since` is given more than once: give it once"),
        ] {
            assert_eq!(EventsQuery::parse(Some(raw)).unwrap_err().to_string(), message, "{raw}");
        }
    }
}
