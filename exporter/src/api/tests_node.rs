//! `GET /api/v1/node`: the inventory's `node`, with the collection's errors.
use super::*;

#[tokio::test]
async fn node_is_the_inventorys_node() {
    let body = ok(&sample(), "/api/v1/node").await;
    assert_eq!(body["collected_at"], "2026-01-02T03:05:00Z");
    assert_eq!(body["node"], golden()["node"]);
    assert_eq!(body["errors"], json!([]));
    assert_eq!(body["node"]["posture"]["bpf_fs"][1]["delegate_cmds"], "any");
}

#[tokio::test]
async fn node_names_failed_collectors_and_refuses_parameters() {
    let state = loaded(FixedSource::new(sample_inventory_with_error()));
    let body = ok(&state, "/api/v1/node").await;
    assert_eq!(body["errors"][0]["collector"], "links");
    let (status, _, body) = get(&sample(), "/api/v1/node?x=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "unknown_parameter");
}
