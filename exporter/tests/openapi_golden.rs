//! The OpenAPI schemas of the three object kinds (`Program`, `Map`, `Link`)
//! against a golden file: their properties, types, nullability and
//! descriptions are the API's contract, whatever Rust shape produces them.
//! Rewritten with `UPDATE_GOLDEN=1`.
use std::path::PathBuf;

use bpf_inventory_exporter::api::openapi;

#[test]
fn object_schemas_match_golden() {
    let doc = serde_json::to_value(openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let objects: serde_json::Map<String, serde_json::Value> = ["Program", "Map", "Link"]
        .into_iter()
        .map(|name| (name.to_owned(), schemas[name].clone()))
        .collect();
    let rendered = serde_json::to_string_pretty(&objects).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/openapi_objects.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        rendered == expected,
        "the object schemas differ from {}; review the diff and rerun with UPDATE_GOLDEN=1\n\
         --- rendered ---\n{rendered}",
        path.display()
    );
}

/// Flattened fields are merged into their object everywhere, also where a
/// generic inlines one (`Page_Link`'s items): the document has no `allOf`.
#[test]
fn flattened_fields_are_plain_properties_everywhere() {
    let doc = serde_json::to_value(openapi()).unwrap();
    let text = doc.to_string();
    assert!(!text.contains("allOf"), "an allOf is left: {text}");
    let items = &doc["components"]["schemas"]["Page_Link"]["properties"]["items"]["items"];
    assert_eq!(items, &doc["components"]["schemas"]["Link"]);
}
