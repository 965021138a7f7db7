//! The OpenAPI 3.1 document of the API, built by hand from [`crate::ROUTES`]' contract and the
//! problem code table, with the policy's names as enums so clients see what is declared.

use custos_policy::Policy;
use custos_policy::source::MAX_NAME_LEN;
use serde_json::{Map, Value, json};

use crate::problem::{CODES, PROBLEM_JSON};

fn problem_ref() -> Value {
    json!({"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// Responses: the success, then the problems a route can answer with.
/// `responses` whose success answer is `text/plain`, not JSON.
fn plain_text(mut responses: Value) -> Value {
    if let Some(ok) = responses.get_mut("200") {
        ok["content"] = json!({"text/plain": {"schema": {"type": "string"}}});
    }
    responses
}

fn responses(ok: (&str, &str, Value), problems: &[&str]) -> Value {
    let mut m = Map::new();
    m.insert(
        ok.0.to_string(),
        json!({"description": ok.1, "content": {"application/json": {"schema": ok.2}}}),
    );
    for status in problems {
        let codes: Vec<&str> = CODES
            .iter()
            .filter(|(_, s, _)| s.to_string() == *status)
            .map(|(c, _, _)| *c)
            .collect();
        let mut r = problem_ref();
        if let Some(o) = r.as_object_mut() {
            o.insert(
                "description".into(),
                json!(format!("problem; code one of: {}", codes.join(", "))),
            );
        }
        m.insert((*status).to_string(), r);
    }
    Value::Object(m)
}

fn keyed(problems: &[&'static str]) -> Vec<&'static str> {
    let mut v = vec!["401", "500", "503"];
    v.extend_from_slice(problems);
    v
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn body(name: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema(name)}}})
}

fn param(name: &str, location: &str, required: bool, description: &str) -> Value {
    json!({"name": name, "in": location, "required": required,
           "description": description, "schema": {"type": "string"}})
}

fn subject_param() -> Value {
    param(
        "id",
        "path",
        true,
        "the subject id, as `POST /v1/subjects` returned it",
    )
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(it.map(|s| json!(s)).collect())
}

/// The document.
pub fn document(policy: &Policy) -> Value {
    let security = json!([{"apiKey": []}]);
    let purposes = names(policy.purposes().iter().map(|p| p.id.as_str()));
    let categories = names(policy.categories().iter().map(|c| c.id.as_str()));
    let services = names(policy.services().iter().map(|s| s.id.as_str()));
    let collections = names(policy.collections().iter().map(|c| c.id.as_str()));
    let recipients = names(policy.recipients().iter().map(|r| r.id.as_str()));
    let reasons = json!([
        "purpose_not_allowed_for_accessor",
        "recipient_not_allowed_for_purpose",
        "subject_erased",
        "subject_under_minimum_age",
        "subject_deactivated",
        "not_held",
        "exceeds_minimum_necessary",
        "not_collected_for_purpose",
        "consent_missing",
        "objected",
        "reference_missing"
    ]);
    let effect = json!({"type": "string", "enum": ["permit", "partial", "deny"]});
    let codes: Vec<Value> = CODES.iter().map(|(c, _, _)| json!(c)).collect();
    let collected = json!({"type": "object", "required": ["subject", "categories"], "properties": {
        "subject": {"type": "string", "format": "uuid"},
        "categories": {"type": "array", "items": {"type": "string"}}}});

    let paths = json!({
        "/v1/subjects": {"post": {
            "operationId": "collect", "summary": "collect personal information about a new subject",
            "security": security, "requestBody": body("Collection"),
            "responses": responses(("201", "collected", collected.clone()), &keyed(&["400", "413", "422"]))}},
        "/v1/subjects/{id}": {"get": {
            "operationId": "read", "summary": "read a subject's values for a purpose",
            "security": security,
            "parameters": [subject_param(),
                param("purpose", "query", true, "why the data is read"),
                param("categories", "query", false, "comma-separated categories; default: every category held"),
                param("recipient", "query", false, "who the data goes to onwards"),
                param("reference", "query", false, "legal process number or verified authority, for legal purposes")],
            "responses": responses(("200", "the decision and the permitted values", schema("Read")),
                &keyed(&["400", "403", "404", "422"]))}},
        "/v1/subjects/{id}/data": {"post": {
            "operationId": "collectMore", "summary": "collect more about an existing subject",
            "security": security, "parameters": [subject_param()], "requestBody": body("Collection"),
            "responses": responses(("201", "collected", collected), &keyed(&["400", "404", "413", "422"]))}},
        "/v1/subjects/{id}/records": {
            "post": {
                "operationId": "appendRecords", "summary": "append records of a collection",
                "security": security, "parameters": [subject_param()], "requestBody": body("Records"),
                "responses": responses(("201", "appended", schema("Appended")), &keyed(&["400", "404", "413", "422"]))},
            "get": {
                "operationId": "readRecords", "summary": "read a subject's records of a collection for a purpose",
                "security": security,
                "parameters": [subject_param(),
                    param("collection", "query", true, "the record collection"),
                    param("purpose", "query", true, "why the records are read"),
                    param("limit", "query", false, "records per page, 1 to 1000 (default 100)"),
                    param("after", "query", false, "the `next` of the previous page")],
                "responses": responses(("200", "the decision and the permitted records", schema("RecordsRead")),
                    &keyed(&["400", "403", "404", "422"]))}},
        "/v1/decisions": {"post": {
            "operationId": "decide", "summary": "the policy's decision over a subject's stored state, without data",
            "security": security, "requestBody": body("DecisionRequest"),
            "responses": responses(("200", "the decision (a denial is an answer, not an error)", schema("Decision")),
                &keyed(&["400", "404", "413", "422"]))}},
        "/v1/ledger/verify": {"get": {
            "operationId": "verifyLedger", "summary": "recompute the ledger's hash chain and check its signed checkpoints",
            "security": security,
            "responses": responses(("200", "the verification", schema("Verification")), &keyed(&[]))}},
        "/healthz": {"get": {"operationId": "health", "summary": "liveness", "security": [],
            "responses": {"200": {"description": "alive", "content": {"application/json": {"schema":
                {"type": "object", "properties": {"status": {"const": "ok"}}}}}}}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics (requests, latencies, decisions, ledger commit sizes); no personal information, any accessor's key",
            "security": security, "responses": plain_text(responses(("200", "text exposition format", json!({"type": "string"})), &keyed(&[])))}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "this document", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/privacy": {"get": {"operationId": "privacyNotice", "summary": "the privacy notice rendered from the enforced policy",
            "security": [], "responses": {"200": {"description": "self-contained HTML; fetches nothing",
                "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    });

    // The server counts a record's bytes (65,536 at most); a string of a quarter as many
    // characters fits whatever they are.
    let record_value = json!({"type": "string", "maxLength": custos_vault::MAX_RECORD_BYTES / 4,
        "description": "at most 65,536 bytes of UTF-8"});
    let schemas = json!({
        "Collection": {"type": "object", "additionalProperties": false,
            "required": ["service", "role", "purposes", "notice", "data"],
            "properties": {
                "service": {"type": "string", "enum": services},
                "role": {"type": "string", "description": "the person's role in the service", "maxLength": MAX_NAME_LEN},
                "purposes": {"type": "array", "items": {"type": "string", "enum": purposes.clone()}},
                "notice": {"type": "string", "description": "the notice version shown", "const": policy.version()},
                "age": {"type": "integer", "minimum": 0},
                "tenant": {"type": "string", "description": "the business customer the person belongs to", "maxLength": MAX_NAME_LEN},
                "data": {"type": "object", "description": "category → value",
                    "propertyNames": {"enum": categories.clone()},
                    "additionalProperties": {"type": "string"}}}},
        "Read": {"type": "object", "required": ["subject", "purpose", "effect", "data", "withheld"],
            "properties": {
                "subject": {"type": "string"}, "purpose": {"type": "string"}, "effect": effect,
                "data": {"type": "object", "additionalProperties": {"type": "string"}},
                "withheld": {"type": "object", "additionalProperties": {"type": "string", "enum": reasons.clone()}},
                "ledger_seq": {"type": "integer"}}},
        "Records": {"type": "object", "additionalProperties": false, "required": ["collection", "purposes"],
            "description": "give `value` or `values`",
            "properties": {
                "collection": {"type": "string", "enum": collections},
                "purposes": {"type": "array", "items": {"type": "string", "enum": purposes.clone()}},
                "value": record_value.clone(),
                "values": {"type": "array", "items": record_value,
                    "minItems": 1, "maxItems": custos_vault::MAX_RECORDS_APPEND}}},
        "Appended": {"type": "object", "properties": {
            "subject": {"type": "string"}, "collection": {"type": "string"},
            "appended": {"type": "integer"}, "id": {"type": "string"}}},
        "RecordsRead": {"type": "object", "properties": {
            "subject": {"type": "string"}, "collection": {"type": "string"}, "purpose": {"type": "string"},
            "effect": effect,
            "records": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "value": {"type": "string"},
                "purposes": {"type": "array", "items": {"type": "string"}},
                "time_ms": {"type": "integer"}}}},
            "withheld": {"type": "object", "description": "reason code → how many records",
                "additionalProperties": {"type": "integer"}},
            "ledger_seq": {"type": "integer"},
            "next": {"type": "string", "description": "present when the page was full: the `after` of the next page"}}},
        "DecisionRequest": {"type": "object", "additionalProperties": false, "required": ["subject", "purpose"],
            "properties": {
                "subject": {"type": "string", "format": "uuid"},
                "purpose": {"type": "string", "enum": purposes},
                "categories": {"type": "array", "items": {"type": "string", "enum": categories}},
                "recipient": {"type": "string", "enum": recipients},
                "reference": {"type": "string", "maxLength": MAX_NAME_LEN}}},
        "Decision": {"type": "object", "properties": {
            "subject": {"type": "string"}, "purpose": {"type": "string"}, "effect": effect,
            "permitted": {"type": "array", "items": {"type": "string"}},
            "withheld": {"type": "object", "additionalProperties": {"type": "string", "enum": reasons.clone()}},
            "denial": {"type": ["string", "null"], "enum": reasons.as_array().cloned().unwrap_or_default().into_iter().chain([Value::Null]).collect::<Vec<_>>()},
            "ground": {"type": ["string", "null"]},
            "disclosure_to": {"type": ["string", "null"]},
            "clauses": {"type": "array", "items": {"type": "string"}},
            "ledger_seq": {"type": "integer"}}},
        "Verification": {"type": "object", "required": ["ok", "entries", "head"], "properties": {
            "ok": {"type": "boolean"}, "entries": {"type": "integer"}, "head": {"type": "string"},
            "checkpoints": {"type": "integer"}, "first_bad": {"type": ["integer", "null"]}}},
        "Problem": {"type": "object", "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string", "format": "uri"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "code": {"type": "string", "enum": codes},
                "field": {"type": "string", "description": "the JSON field or query parameter at fault"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "code": {"type": "string"}, "field": {"type": "string"}, "detail": {"type": "string"}}}}}},
    });

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Custos",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Personal-data vault enforcing policy `{}` version {}.", policy.id(), policy.version()),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                "description": "an API key from `custos keys create --accessor NAME`"}},
            "schemas": schemas,
        },
    })
}
