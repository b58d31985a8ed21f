//! `GET /api/v1/events/stream`: the events log as Server-Sent Events, live.
//! Each client reads the shared log through its own cursor (the sequence
//! number of the last event it was sent), a page of at most [`PAGE`] events
//! at a time and only when the connection takes more (hyper polls the body as
//! it writes). So a slow client holds one page, never a growing queue: when
//! the log moves past its cursor, it is sent `event: missed` with how many
//! events it lost, then carries on with the oldest kept. Resuming after
//! `Last-Event-ID` is reading from that cursor: no gap, no duplicate.
use std::{collections::VecDeque, convert::Infallible, sync::Arc};

use axum::{
    extract::{RawQuery, State},
    http::HeaderMap,
    response::{
        sse::{Event as SseEvent, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::stream::{self, Stream};
use tokio::sync::watch;

use super::{
    error::{ApiError, ErrorBody},
    query::{parse_u64, EventsQuery, EventsStreamParams},
};
use crate::{
    events::{EventFilter, EventLog},
    http::CollectState,
};

/// Most events one read of the log takes for a client: its buffer's bound.
pub const PAGE: usize = 256;

const LAST_EVENT_ID: &str = "last-event-id";

/// BPF program loads and unloads as Server-Sent Events, live (`curl -N`).
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(EventsStreamParams),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
         description = "An endless stream: each event is `id: <seq>`, `event: load` or `event: unload` and \
            `data:` the event's JSON (as in `/api/v1/events`); `event: missed` with `data: <count>` when \
            events after the client's last one left the buffer before it read them; comments as keep-alive."),
        (status = 400, description = "Unknown or invalid query parameter or Last-Event-ID", body = ErrorBody),
        (status = 503, description = "Events are off, refused by the kernel or still starting", body = ErrorBody),
    ))]
pub async fn events_stream(
    State(state): State<CollectState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = EventsQuery::parse_stream(raw.as_deref())?;
    let resume = match headers.get(LAST_EVENT_ID) {
        Some(value) => Some(parse_u64(
            "Last-Event-ID",
            &String::from_utf8_lossy(value.as_bytes()),
        )?),
        None => None,
    };
    let log = Arc::clone(state.events().ok_or(ApiError::EventsUnavailable)?);
    let newest = log.subscribe();
    let newest_now = *newest.borrow();
    let after = match resume {
        // An id past the newest is from an earlier exporter process whose
        // numbers this one's do not exceed (the clock went back): all this
        // process kept is new to the client.
        Some(id) if id > newest_now => 0,
        Some(id) => id,
        None if query.since > 0 => query.since,
        // Without a place to start, only what happens from now on.
        None => newest_now,
    };
    Ok(Sse::new(follow(log, newest, after, query.filter))
        .keep_alive(KeepAlive::default())
        .into_response())
}

struct Cursor {
    log: Arc<EventLog>,
    newest: watch::Receiver<u64>,
    after: u64,
    filter: EventFilter,
    pending: VecDeque<SseEvent>,
}

/// The events after `after` that pass `filter`, then each new one; ends only
/// when the log is gone (the server shuts down).
pub fn follow(
    log: Arc<EventLog>,
    newest: watch::Receiver<u64>,
    after: u64,
    filter: EventFilter,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let cursor = Cursor {
        log,
        newest,
        after,
        filter,
        pending: VecDeque::new(),
    };
    stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(event), cursor));
            }
            // Marked seen before the read: an append after it wakes the wait below.
            let newest = *cursor.newest.borrow_and_update();
            let page = cursor.log.page(cursor.after, PAGE, &cursor.filter);
            if page.dropped > 0 {
                cursor.pending.push_back(
                    SseEvent::default()
                        .event("missed")
                        .data(page.dropped.to_string()),
                );
            }
            cursor.after = page.next_since;
            cursor.pending.extend(page.items.iter().map(|e| {
                // An event serializes to JSON (strings, numbers, a time) always.
                let event = SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.kind.as_str());
                match serde_json::to_string(e) {
                    Ok(json) => event.data(json),
                    Err(error) => event.comment(format!("encoding failed: {error}")),
                }
            }));
            if cursor.pending.is_empty()
                && cursor.after >= newest
                && cursor.newest.changed().await.is_err()
            {
                return None;
            }
        }
    })
}
