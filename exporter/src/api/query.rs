//! Query and path parameters of the JSON API: parsed strictly (an unknown or
//! repeated parameter, a non-numeric id or an unknown type name is a 400) and
//! documented for OpenAPI from the same tables the parser checks against.
use std::collections::HashSet;

use axum::extract::{rejection::PathRejection, Path};
use utoipa::{
    openapi::{
        path::{Parameter, ParameterBuilder, ParameterIn},
        schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type},
        Required, Schema,
    },
    IntoParams,
};

use super::error::ApiError;
use crate::inventory::{names, Collector, Owners};

mod events;
pub(super) use events::parse_u64;
pub use events::{EventsParams, EventsQuery, EventsStreamParams};

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest accepted `limit`: bounds the work and the size of one answer.
pub const MAX_LIMIT: u32 = 1000;

/// Filters and paging of a list endpoint. Filters combine with AND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// Exact type name, as bpftool spells it.
    pub object_type: Option<String>,
    /// Substring of the name (for links: of the attached program's name).
    pub name: Option<String>,
    pub id: Option<u32>,
    /// Links only: the attached program.
    pub prog_id: Option<u32>,
    /// Held by a process with this exact comm / pod uid / container id / pid
    /// (one process matching all of those given).
    pub comm: Option<String>,
    pub pod_uid: Option<String>,
    pub container_id: Option<String>,
    pub pid: Option<u32>,
    pub limit: u32,
    pub offset: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            object_type: None,
            name: None,
            id: None,
            prog_id: None,
            comm: None,
            pod_uid: None,
            container_id: None,
            pid: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl ListQuery {
    /// Parses the raw query string of the list of `kind`.
    pub fn parse(kind: Collector, raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = ListQuery::default();
        for (name, value) in pairs(raw)? {
            match name.as_str() {
                "type" => query.object_type = Some(parse_type(kind, value)?),
                "name" => query.name = Some(value),
                "id" => query.id = Some(parse_u32("id", &value)?),
                "prog_id" if kind == Collector::Links => {
                    query.prog_id = Some(parse_u32("prog_id", &value)?)
                }
                "comm" => query.comm = Some(value),
                "pod_uid" => query.pod_uid = Some(value),
                "container_id" => query.container_id = Some(value),
                "pid" => query.pid = Some(parse_u32("pid", &value)?),
                "limit" => query.limit = parse_limit(&value)?,
                "offset" => query.offset = parse_u32("offset", &value)?,
                _ => {
                    return Err(ApiError::UnknownParameter {
                        name: short(&name),
                        accepted: accepted(kind).join(", "),
                    })
                }
            }
        }
        Ok(query)
    }

    /// Whether an object passes the filters. `name` is None for a link whose
    /// program is not in the collection: a `name` filter then excludes it.
    pub fn matches(
        &self,
        id: u32,
        object_type: &str,
        name: Option<&str>,
        prog_id: Option<u32>,
    ) -> bool {
        self.id.is_none_or(|want| want == id)
            && self.object_type.as_deref().is_none_or(|t| t == object_type)
            && self
                .name
                .as_deref()
                .is_none_or(|part| name.is_some_and(|name| name.contains(part)))
            && self.prog_id.is_none_or(|want| prog_id == Some(want))
    }

    /// Whether one of `owners` passes every owner filter; with an owner
    /// filter, objects whose owners are unknown (null) never match.
    pub fn matches_owners(&self, owners: &Option<Owners>) -> bool {
        if self.comm.is_none()
            && self.pod_uid.is_none()
            && self.container_id.is_none()
            && self.pid.is_none()
        {
            return true;
        }
        owners.as_deref().unwrap_or_default().iter().any(|o| {
            self.comm.as_deref().is_none_or(|c| c == &*o.comm)
                && self
                    .pod_uid
                    .as_deref()
                    .is_none_or(|u| o.pod_uid.as_deref() == Some(u))
                && self
                    .container_id
                    .as_deref()
                    .is_none_or(|c| o.container_id.as_deref() == Some(c))
                && self.pid.is_none_or(|p| p == o.pid)
        })
    }

    /// The page of `items` (already filtered, in id order) and their total.
    pub fn page<'a, T: Clone + 'a>(&self, items: impl Iterator<Item = &'a T>) -> (usize, Vec<T>) {
        let mut total = 0;
        let mut page = Vec::new();
        let (offset, limit) = (self.offset as usize, self.limit as usize);
        for item in items {
            if total >= offset && page.len() < limit {
                page.push(item.clone());
            }
            total += 1;
        }
        (total, page)
    }
}

/// Detail endpoints take no query parameters: any one is unknown.
pub fn parse_no_query(raw: Option<&str>) -> Result<(), ApiError> {
    match pairs(raw)?.into_iter().next() {
        None => Ok(()),
        Some((name, _)) => Err(ApiError::UnknownParameter {
            name: short(&name),
            accepted: "no query parameters".into(),
        }),
    }
}

/// The `{id}` path segment: a kernel object id (u32). A segment axum cannot
/// decode (invalid UTF-8) is a 400 in our shape, not axum's plain text.
pub fn parse_path_id(path: Result<Path<String>, PathRejection>) -> Result<u32, ApiError> {
    match path {
        Ok(Path(raw)) => parse_u32("id", &raw),
        Err(rejection) => Err(invalid("id", "", rejection.body_text())),
    }
}

fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = Vec::new();
    let mut seen = HashSet::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name)?, decode(value)?);
        if !seen.insert(name.clone()) {
            return Err(ApiError::DuplicateParameter { name: short(&name) });
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Strict form decoding: `+` is a space, every `%` starts two hex digits,
/// and the result is UTF-8 (lenient decoders turn bad input into U+FFFD or
/// keep it verbatim, which would filter on something the client never meant).
fn decode(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    for (at, _) in raw.match_indices('%') {
        let escape = bytes.get(at + 1..at + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            return Err(ApiError::MalformedQuery(format!(
                "`%` must start two hex digits (at {:?})",
                short(&raw[at..])
            )));
        }
    }
    let plus_as_space = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| {
            ApiError::MalformedQuery(format!("{:?} is not UTF-8 once decoded", short(raw)))
        })
}

/// At most 32 characters of client input, for error messages.
pub fn short(input: &str) -> String {
    const MAX: usize = 32;
    match input.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

fn accepted(kind: Collector) -> Vec<&'static str> {
    let mut names = vec!["type", "name", "id"];
    if kind == Collector::Links {
        names.push("prog_id");
    }
    names.extend(["comm", "pod_uid", "container_id", "pid", "limit", "offset"]);
    names
}

fn parse_u32(name: &'static str, value: &str) -> Result<u32, ApiError> {
    // Digits only: u32's parser would also take a leading '+'.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(name, value, "expected a decimal integer"));
    }
    value
        .parse()
        .map_err(|_| invalid(name, value, format!("expected at most {}", u32::MAX)))
}

fn parse_limit(value: &str) -> Result<u32, ApiError> {
    let range = || format!("expected an integer from 1 to {MAX_LIMIT}");
    match parse_u32("limit", value) {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(invalid("limit", value, range())),
    }
}

fn parse_type(kind: Collector, value: String) -> Result<String, ApiError> {
    let known = known_types(kind);
    let newer_than_tables = value
        .strip_prefix("unknown:")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if known.contains(&value.as_str()) || newer_than_tables {
        return Ok(value);
    }
    let kind_name = kind.as_str().trim_end_matches('s');
    Err(invalid(
        "type",
        &value,
        format!("not a {kind_name} type; known: {}", known.join(", ")),
    ))
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter {
        name,
        value: short(value),
        reason: reason.into(),
    }
}

/// Type names a `type` filter of `kind` accepts (besides `unknown:<n>`).
pub fn known_types(kind: Collector) -> &'static [&'static str] {
    match kind {
        Collector::Programs => names::known_prog_types(),
        Collector::Maps => names::known_map_types(),
        Collector::Links => names::known_link_types(),
    }
}

/// OpenAPI description of the list parameters, one type per list.
pub struct ProgramListParams;
pub struct MapListParams;
pub struct LinkListParams;

impl IntoParams for ProgramListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        list_params(Collector::Programs)
    }
}

impl IntoParams for MapListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        list_params(Collector::Maps)
    }
}

impl IntoParams for LinkListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        list_params(Collector::Links)
    }
}

fn list_params(kind: Collector) -> Vec<Parameter> {
    let type_names = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(known_types(kind).iter().copied()));
    let newer = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^unknown:[0-9]+$"));
    let type_schema = AnyOfBuilder::new().item(type_names).item(newer).build();
    let name_doc = match kind {
        Collector::Links => "Substring of the attached program's name.",
        _ => "Substring of the name (case-sensitive).",
    };
    let mut params = vec![
        param(
            "type",
            "Exact type name as bpftool spells it (`unknown:<n>` for a kernel value newer than the exporter).",
            type_schema.into(),
        ),
        param(
            "name",
            name_doc,
            ObjectBuilder::new().schema_type(Type::String).into(),
        ),
        param("id", "Only the object with this id.", u32_schema().into()),
    ];
    if kind == Collector::Links {
        params.push(param(
            "prog_id",
            "Only links attaching this program.",
            u32_schema().into(),
        ));
    }
    let text = || ObjectBuilder::new().schema_type(Type::String).into();
    params.extend([
        param(
            "comm",
            "Held by a process with this exact comm (one process matching every owner filter).",
            text(),
        ),
        param(
            "pod_uid",
            "Held by a process of the pod with this uid.",
            text(),
        ),
        param(
            "container_id",
            "Held by a process of the container with this id.",
            text(),
        ),
        param(
            "pid",
            "Held by the process with this pid.",
            u32_schema().into(),
        ),
    ]);
    params.push(param(
        "limit",
        "Page size.",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(DEFAULT_LIMIT.into()))
            .into(),
    ));
    params.push(param(
        "offset",
        "Objects to skip (in id order) before the page.",
        u32_schema().default(Some(0.into())).into(),
    ));
    params
}

/// A u32, documented as a bounded int64 (OpenAPI has no uint32 format).
pub fn u32_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(u32::MAX))
}

fn param(name: &str, description: &str, schema: Schema) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

#[cfg(test)]
mod tests;
