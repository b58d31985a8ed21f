use super::*;
use crate::inventory::Collector::{Links, Maps, Programs};

fn parse(kind: Collector, raw: &str) -> Result<ListQuery, ApiError> {
    ListQuery::parse(kind, Some(raw))
}

fn message(result: Result<ListQuery, ApiError>) -> String {
    result.expect_err("must be rejected").to_string()
}

#[test]
fn no_query_gives_the_defaults() {
    let query = ListQuery::parse(Maps, None).unwrap();
    assert_eq!(query, ListQuery::default());
    assert_eq!((query.limit, query.offset), (100, 0));
    assert_eq!(parse(Maps, "").unwrap(), ListQuery::default());
}

#[test]
fn every_parameter_is_parsed() {
    let query = parse(
        Links,
        "type=iter&name=dump%20maps&id=4&prog_id=21&comm=agent&pod_uid=u&container_id=c&pid=9&limit=1000&offset=7",
    )
    .unwrap();
    assert_eq!(
        query,
        ListQuery {
            object_type: Some("iter".into()),
            name: Some("dump maps".into()),
            id: Some(4),
            prog_id: Some(21),
            comm: Some("agent".into()),
            pod_uid: Some("u".into()),
            container_id: Some("c".into()),
            pid: Some(9),
            limit: 1000,
            offset: 7,
        }
    );
    let query = parse(Maps, "name=a+b&id=4294967295&limit=1").unwrap();
    assert_eq!(query.name.as_deref(), Some("a b"));
    assert_eq!((query.id, query.limit), (Some(u32::MAX), 1));
    // An empty name matches every name.
    assert_eq!(parse(Programs, "name=").unwrap().name.as_deref(), Some(""));
}

#[test]
fn type_names_are_checked_per_kind() {
    assert_eq!(
        parse(Maps, "type=lru_hash").unwrap().object_type.as_deref(),
        Some("lru_hash")
    );
    assert_eq!(
        parse(Programs, "type=socket_filter")
            .unwrap()
            .object_type
            .as_deref(),
        Some("socket_filter")
    );
    // A kernel newer than the name tables reports (and filters) `unknown:<n>`.
    assert_eq!(
        parse(Maps, "type=unknown:40")
            .unwrap()
            .object_type
            .as_deref(),
        Some("unknown:40")
    );
    let wrong_kind = message(parse(Programs, "type=hash"));
    assert!(
        wrong_kind.starts_with(
            r#"invalid value "hash" for `type`: not a program type; known: unspec, socket_filter,"#
        ),
        "{wrong_kind}"
    );
    assert!(message(parse(Links, "type=xdpp"))
        .contains("not a link type; known: unspec, raw_tracepoint,"));
    for bad in [
        "type=",
        "type=HASH",
        "type=unknown:",
        "type=unknown:x1",
        "type=hash%00",
    ] {
        assert!(parse(Maps, bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn numbers_are_plain_decimal_u32() {
    for (raw, expected) in [
        (
            "id=",
            r#"invalid value "" for `id`: expected a decimal integer"#,
        ),
        (
            "id=%2B5",
            r#"invalid value "+5" for `id`: expected a decimal integer"#,
        ),
        (
            "id=-1",
            r#"invalid value "-1" for `id`: expected a decimal integer"#,
        ),
        (
            "id=0x10",
            r#"invalid value "0x10" for `id`: expected a decimal integer"#,
        ),
        (
            "id=4294967296",
            r#"invalid value "4294967296" for `id`: expected at most 4294967295"#,
        ),
        (
            "offset=1.5",
            r#"invalid value "1.5" for `offset`: expected a decimal integer"#,
        ),
        (
            "limit=0",
            r#"invalid value "0" for `limit`: expected an integer from 1 to 1000"#,
        ),
        (
            "limit=1001",
            r#"invalid value "1001" for `limit`: expected an integer from 1 to 1000"#,
        ),
        (
            "limit=ten",
            r#"invalid value "ten" for `limit`: expected an integer from 1 to 1000"#,
        ),
    ] {
        assert_eq!(message(parse(Maps, raw)), expected, "{raw}");
    }
    assert_eq!(parse(Maps, "offset=4294967295").unwrap().offset, u32::MAX);
    assert_eq!(parse(Maps, "id=007").unwrap().id, Some(7));
}

#[test]
fn unknown_and_repeated_parameters_are_rejected() {
    assert_eq!(
        message(parse(Maps, "colour=red")),
        "unknown query parameter `colour`: this endpoint accepts type, name, id, comm, pod_uid, container_id, pid, limit, offset"
    );
    assert_eq!(
        message(parse(Programs, "prog_id=3")),
        "unknown query parameter `prog_id`: this endpoint accepts type, name, id, comm, pod_uid, container_id, pid, limit, offset"
    );
    assert_eq!(
        message(parse(Links, "Type=iter")),
        "unknown query parameter `Type`: this endpoint accepts type, name, id, prog_id, comm, pod_uid, container_id, pid, limit, offset"
    );
    assert_eq!(
        message(parse(Maps, "id=1&name=x&id=1")),
        "query parameter `id` is given more than once: give it once"
    );
    // A bare key is a parameter with an empty value, not silently ignored.
    assert!(parse(Maps, "verbose").is_err());
    assert_eq!(parse_no_query(None).ok(), Some(()));
    assert_eq!(parse_no_query(Some("")).ok(), Some(()));
    assert_eq!(
        parse_no_query(Some("limit=1")).unwrap_err().to_string(),
        "unknown query parameter `limit`: this endpoint accepts no query parameters"
    );
}

#[test]
fn filters_combine_with_and() {
    let query = parse(Links, "type=iter&name=dump&prog_id=21").unwrap();
    assert!(query.matches(4, "iter", Some("dump_maps"), Some(21)));
    assert!(!query.matches(4, "xdp", Some("dump_maps"), Some(21)));
    assert!(!query.matches(4, "iter", Some("xdp_fw"), Some(21)));
    assert!(!query.matches(4, "iter", Some("dump_maps"), Some(7)));
    // A link whose program is gone has no name to match.
    assert!(!query.matches(4, "iter", None, Some(21)));
    let by_id = parse(Maps, "id=11").unwrap();
    assert!(
        by_id.matches(11, "hash", Some("x"), None) && !by_id.matches(12, "hash", Some("x"), None)
    );
    assert!(ListQuery::default().matches(1, "anything", None, None));
}

#[test]
fn pages_count_every_match_and_slice_in_order() {
    let ids: Vec<u32> = (1..=10).collect();
    let page = |raw: &str| parse(Maps, raw).unwrap().page(ids.iter());
    assert_eq!(page(""), (10, ids.clone()));
    assert_eq!(page("limit=3"), (10, vec![1, 2, 3]));
    assert_eq!(page("limit=3&offset=3"), (10, vec![4, 5, 6]));
    assert_eq!(page("limit=3&offset=9"), (10, vec![10]));
    assert_eq!(page("offset=10"), (10, vec![]));
    assert_eq!(page("offset=4294967295"), (10, vec![]));
}

#[test]
fn path_ids_are_u32() {
    let path = |raw: &str| parse_path_id(Ok(Path(raw.to_owned())));
    assert_eq!(path("42").ok(), Some(42));
    assert_eq!(path("4294967295").ok(), Some(u32::MAX));
    for bad in ["", "abc", "-1", "4294967296", "1e3", " 1"] {
        assert!(path(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn malformed_escapes_and_non_utf8_are_rejected() {
    for raw in ["name=%FF%FE", "name=%", "name=%zz", "name=a%2", "%C3=x"] {
        let error = parse(Maps, raw).expect_err(raw);
        assert!(
            matches!(error, ApiError::MalformedQuery(_)),
            "{raw}: {error}"
        );
        assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
    }
    // Valid escapes, including multi-byte UTF-8, still decode.
    let query = parse(Maps, "name=%C3%A9t%C3%A9%2B1").unwrap();
    assert_eq!(query.name.as_deref(), Some("été+1"));
}

#[test]
fn error_messages_quote_a_short_prefix_of_the_input() {
    let long_id = "9".repeat(5000);
    let id_error = message(parse(Maps, &format!("id={long_id}")));
    assert!(id_error.len() < 200, "{id_error}");
    assert!(
        id_error.contains(&format!("\"{}…\"", "9".repeat(32))),
        "{id_error}"
    );
    let long_name = "x".repeat(5000);
    let name_error = message(parse(Maps, &format!("{long_name}=1")));
    assert!(name_error.len() < 200, "{name_error}");
}
