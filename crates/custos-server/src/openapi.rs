//! The OpenAPI 3.1 document, derived from the handlers (`#[utoipa::path]`) and the request and
//! response types (`ToSchema`), so it cannot disagree with the server; then completed with
//! what only the running policy and the problem table know: the policy's names as enums
//! (what is declared, so a client and a fuzzer send names the server knows), the notice
//! version, and for every problem status of every operation the codes it can carry.

use custos_policy::source::MAX_NAME_LEN;
use custos_policy::{Basis, Policy};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::problem::{CODES, PROBLEM_JSON};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Custos",
        description = "Personal-data vault: personal information is stored encrypted and leaves only through a decision the policy permits, each decision in a tamper-evident ledger."
    ),
    paths(
        crate::subjects::collect,
        crate::subjects::read,
        crate::subjects::collect_more,
        crate::records::append,
        crate::records::read,
        crate::consents::record,
        crate::consents::list,
        crate::consents::preferences,
        crate::consents::set_preferences,
        crate::decisions::decide,
        crate::instruments::register,
        crate::instruments::show,
        crate::people::sign_in,
        crate::people::verify,
        crate::people::sign_out,
        crate::me::overview,
        crate::me::export,
        crate::me::ledger,
        crate::me::correct,
        crate::me::deactivate,
        crate::me::erase,
        crate::me::consents,
        crate::me::consent,
        crate::me::preferences,
        crate::me::set_preferences,
        crate::requests::create,
        crate::requests::list,
        crate::requests::show,
        crate::requests::verify,
        crate::requests::complete,
        crate::requests::refuse,
        crate::ledger::verify,
        crate::ledger::checkpoint,
        crate::ledger::key,
        crate::ledger::inclusion,
        crate::ledger::consistency,
        crate::pages::healthz,
        crate::pages::metrics,
        crate::pages::openapi,
        crate::pages::privacy,
        crate::wellknown::jwks,
        crate::inbound_mail::intake,
        crate::referrals::refer,
        crate::mailings::send,
        crate::mailings::show,
        crate::mailings::page_get,
        crate::mailings::unsubscribe,
        crate::cookies::consent_js,
        crate::cookies::record,
        crate::cookies::gpc_json,
        crate::beacon::beacon,
        crate::analytics::telemetry,
        crate::analytics::pages,
        crate::analytics::gpc,
        crate::analytics::telemetry_counts,
    ),
    components(schemas(crate::problem::ProblemDoc, crate::problem::FieldErrorDoc))
)]
struct Api;

/// The longest record value the document promises, in characters.
const MAX_RECORD_CHARS: usize = custos_vault::MAX_RECORD_BYTES / 4;
/// The longest record value of a batch (`values`) the document promises, in characters.
const MAX_BATCHED_RECORD_CHARS: usize = 128;
/// The longest collected value the document promises, in characters (the server takes up
/// to [`crate::input::MAX_VALUE_BYTES`] bytes).
const MAX_VALUE_CHARS: usize = crate::input::MAX_VALUE_BYTES / 4;

/// Problem statuses every operation that takes a key can answer, whatever it does: no or a
/// bad key, an internal error, a request that took too long.
const KEYED: [&str; 3] = ["401", "500", "503"];

/// Problem statuses every operation can answer: a URI too long for the server.
const ANY: [&str; 1] = ["414"];

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(it.map(|s| json!(s)).collect())
}

/// The value at a path of object keys, if every step exists.
fn at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(*k))
}

/// Sets `key` of the object at `path` (when it exists: a schema that lost a property shows
/// up in the contract tests, not as a panic here).
fn set(doc: &mut Value, path: &[&str], key: &str, value: Value) {
    if let Some(Value::Object(m)) = at(doc, path) {
        m.insert(key.to_string(), value);
    }
}

/// The document for a policy.
pub fn document(policy: &Policy) -> Value {
    let mut doc = serde_json::to_value(Api::openapi()).unwrap_or_else(|_| json!({}));
    let purposes = strings(policy.purposes().iter().map(|p| p.id.as_str()));
    let categories = strings(policy.categories().iter().map(|c| c.id.as_str()));
    let services = strings(policy.services().iter().map(|s| s.id.as_str()));
    let collections = strings(policy.collections().iter().map(|c| c.id.as_str()));
    let recipients = strings(policy.recipients().iter().map(|r| r.id.as_str()));
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
        "reference_missing",
        "recipient_required",
        "instrument_unknown",
        "instrument_expired",
        "instrument_kind",
        "instrument_scope"
    ]);
    let codes = strings(CODES.iter().map(|(c, _, _)| *c));
    let mut role_ids: Vec<&str> = policy
        .services()
        .iter()
        .flat_map(|s| s.roles.iter().map(|r| r.id.as_str()))
        .collect();
    role_ids.sort_unstable();
    role_ids.dedup();
    let roles = strings(role_ids.into_iter());
    // `a,b`: names, comma-separated (which ones are declared is in `DecisionRequest`'s enum;
    // an alternation of every category here made the fuzzer's regex engine give up).
    let category_list = "^[a-z][a-z0-9_.-]*(,[a-z][a-z0-9_.-]*)*$".to_string();
    let n_purposes = policy.purposes().len();
    let n_categories = policy.categories().len();
    security_scheme(&mut doc);
    // Lists of names hold each name once (`Names`): the server refuses a repeated one.
    for (schema, field) in [
        ("Collection", "purposes"),
        ("Records", "purposes"),
        ("DecisionRequest", "categories"),
        ("InstrumentRequest", "categories"),
    ] {
        set(
            &mut doc,
            &["components", "schemas", schema, "properties", field],
            "uniqueItems",
            json!(true),
        );
    }

    set(
        &mut doc,
        &["info"],
        "description",
        json!(format!(
            "Personal-data vault enforcing policy `{}` version {}: personal information is stored encrypted and leaves only through a decision the policy permits, each decision in a tamper-evident ledger.",
            policy.id(),
            policy.version()
        )),
    );
    // The policy's names.
    let s = ["components", "schemas"];
    let prop = |schema: &'static str, p: &'static str| -> Vec<&'static str> {
        vec![s[0], s[1], schema, "properties", p]
    };
    set(&mut doc, &prop("Collection", "service"), "enum", services);
    // A mailing's purpose: one people can leave (basis consent or opt-out, no recipient).
    let mailable = strings(
        policy
            .purposes()
            .iter()
            .filter(|p| matches!(p.basis, Basis::Consent | Basis::OptOut) && !p.requires_recipient)
            .map(|p| p.id.as_str()),
    );
    set(
        &mut doc,
        &prop("MailingRequest", "purpose"),
        "enum",
        mailable,
    );
    set(&mut doc, &prop("Collection", "role"), "enum", roles);
    set(
        &mut doc,
        &prop("Collection", "purposes"),
        "maxItems",
        json!(n_purposes),
    );
    // What a body may hold is bounded by the body limit (1 MiB by default): at most every
    // category once, each value of at most 2,048 characters (6 bytes each at worst, escaped).
    set(
        &mut doc,
        &[&prop("Collection", "data")[..], &["additionalProperties"]].concat(),
        "maxLength",
        json!(MAX_VALUE_CHARS),
    );
    set(
        &mut doc,
        &prop("Correction", "data"),
        "minProperties",
        json!(1),
    );
    set(
        &mut doc,
        &[&prop("Correction", "data")[..], &["additionalProperties"]].concat(),
        "maxLength",
        json!(MAX_VALUE_CHARS),
    );
    set(
        &mut doc,
        &prop("Records", "purposes"),
        "maxItems",
        json!(n_purposes),
    );
    set(
        &mut doc,
        &prop("DecisionRequest", "categories"),
        "maxItems",
        json!(n_categories),
    );
    // Which roles each service has, and what each role may state and give: the collection
    // check's tables, so a schema-valid collection is one the policy knows (whether the
    // caller collects for that service, and the person's age, only the server can tell).
    let per_role: Vec<Value> = policy
        .services()
        .iter()
        .flat_map(|svc| {
            svc.roles.iter().map(move |role| {
                json!({"properties": {
                    "service": {"const": svc.id},
                    "role": {"const": role.id},
                    "purposes": {"items": {"enum": policy.purpose_names(role.allowed_purposes)}},
                    "data": {"propertyNames": {"enum":
                        policy.category_names(role.collects.union(role.optional))}},
                }})
            })
        })
        .collect();
    set(
        &mut doc,
        &[s[0], s[1], "Collection"],
        "oneOf",
        Value::Array(per_role),
    );
    // One of `value` and `values`.
    set(
        &mut doc,
        &[s[0], s[1], "Records"],
        "oneOf",
        json!([{"required": ["value"]}, {"required": ["values"]}]),
    );
    set(
        &mut doc,
        &prop("Collection", "notice"),
        "const",
        json!(policy.version()),
    );
    set(
        &mut doc,
        &[&prop("Collection", "purposes")[..], &["items"]].concat(),
        "enum",
        purposes.clone(),
    );
    set(
        &mut doc,
        &prop("Collection", "data"),
        "propertyNames",
        json!({"enum": categories.clone()}),
    );
    set(
        &mut doc,
        &prop("Collection", "data"),
        "minProperties",
        json!(1),
    );
    // The wire types' bounds, which their `Deserialize` enforces.
    set(
        &mut doc,
        &[s[0], s[1], "Name"],
        "maxLength",
        json!(MAX_NAME_LEN),
    );
    if let Some(Value::Object(age)) = at(&mut doc, &[s[0], s[1], "Age"]) {
        age.remove("format");
        age.insert("maximum".into(), json!(u32::MAX));
    }
    // A record counts its bytes (65,536 at most): a quarter as many characters fit whatever
    // they are.
    set(
        &mut doc,
        &prop("Records", "value"),
        "maxLength",
        json!(MAX_RECORD_CHARS),
    );
    // 1,000 of them in one body: each short enough that the body stays under its limit.
    set(
        &mut doc,
        &[&prop("Records", "values")[..], &["items"]].concat(),
        "maxLength",
        json!(MAX_BATCHED_RECORD_CHARS),
    );
    set(&mut doc, &prop("Problem", "type"), "format", json!("uri"));
    set(
        &mut doc,
        &prop("Records", "collection"),
        "enum",
        collections.clone(),
    );
    set(
        &mut doc,
        &[&prop("Records", "purposes")[..], &["items"]].concat(),
        "enum",
        purposes.clone(),
    );
    set(
        &mut doc,
        &prop("DecisionRequest", "purpose"),
        "enum",
        purposes.clone(),
    );
    // The purpose an objection names, or none.
    let mut objectable = purposes.clone();
    if let Value::Array(a) = &mut objectable {
        a.push(Value::Null);
    }
    set(&mut doc, &prop("NewRequest", "purpose"), "enum", objectable);
    set(
        &mut doc,
        &[&prop("DecisionRequest", "categories")[..], &["items"]].concat(),
        "enum",
        categories.clone(),
    );
    set(
        &mut doc,
        &prop("DecisionRequest", "recipient"),
        "enum",
        recipients.clone(),
    );
    set(
        &mut doc,
        &[&prop("InstrumentRequest", "categories")[..], &["items"]].concat(),
        "enum",
        categories.clone(),
    );
    set(
        &mut doc,
        &prop("InstrumentRequest", "categories"),
        "maxItems",
        json!(n_categories),
    );
    for schema in ["ReadAnswer", "DecisionAnswer"] {
        set(
            &mut doc,
            &[&prop(schema, "withheld")[..], &["additionalProperties"]].concat(),
            "enum",
            reasons.clone(),
        );
    }
    // What a choice may name: the purposes resting on consent or opt-out, the methods, the
    // notice in force; preferences name the communication topics.
    let choosable = strings(
        policy
            .purposes()
            .iter()
            .filter(|p| matches!(p.basis, Basis::Consent | Basis::OptOut))
            .map(|p| p.id.as_str()),
    );
    set(
        &mut doc,
        &prop("ConsentRequest", "purpose"),
        "enum",
        choosable,
    );
    set(
        &mut doc,
        &prop("ConsentRequest", "method"),
        "enum",
        strings(custos_vault::CONSENT_METHODS.iter().map(|(m, _)| *m)),
    );
    set(
        &mut doc,
        &prop("ConsentRequest", "notice"),
        "const",
        json!(policy.version()),
    );
    set(
        &mut doc,
        &prop("ConsentRequest", "recipient"),
        "enum",
        recipients.clone(),
    );
    set(
        &mut doc,
        &prop("PreferencesRequest", "topics"),
        "propertyNames",
        json!({"enum": custos_vault::communication_topics(policy)
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>()}),
    );
    set(
        &mut doc,
        &prop("PreferencesRequest", "topics"),
        "minProperties",
        json!(1),
    );
    // A cookie choice names the policy's cookies; telemetry the declared metrics.
    set(
        &mut doc,
        &prop("CookieConsentRequest", "choices"),
        "propertyNames",
        json!({"enum": policy.cookies().iter().map(|c| c.id.get_ref().as_str()).collect::<Vec<_>>()}),
    );
    set(
        &mut doc,
        &prop("CookieConsentRequest", "notice"),
        "const",
        json!(policy.version()),
    );
    set(
        &mut doc,
        &prop("TelemetryRequest", "metric"),
        "enum",
        strings(custos_vault::TELEMETRY_METRICS.iter().copied()),
    );
    set(&mut doc, &prop("Problem", "code"), "enum", codes);
    let query_enums = [
        ("purpose", json!({"enum": purposes})),
        ("collection", json!({"enum": collections})),
        ("recipient", json!({"enum": recipients})),
        ("categories", json!({"pattern": category_list})),
    ];
    // An inbound message's shape, as `custos_vault::from_addresses` checks it: header lines
    // (`name: value`, a name of printable ASCII but `:`) or continuations, then optionally an
    // empty line and the body; no NUL.
    for media in crate::inbound_mail::MEDIA_TYPES {
        let schema = [
            "paths",
            "/v1/inbound-mail",
            "post",
            "requestBody",
            "content",
            media,
            "schema",
        ];
        set(
            &mut doc,
            &schema,
            "pattern",
            json!(crate::inbound_mail::SHAPE),
        );
        set(
            &mut doc,
            &schema,
            "maxLength",
            json!(custos_vault::MAX_INBOUND_MAIL / 4),
        );
    }
    let Some(Value::Object(paths)) = doc.get_mut("paths") else {
        return doc;
    };
    for ops in paths.values_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut() {
            complete_operation(op, &query_enums);
        }
    }
    doc
}

/// An operation's query enums, its common problem statuses, and each problem status's codes.
fn complete_operation(op: &mut Value, query_constraints: &[(&str, Value)]) {
    if let Some(Value::Array(params)) = op.get_mut("parameters") {
        for p in params {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            if let Some((_, constraint)) = query_constraints.iter().find(|(n, _)| *n == name) {
                if let (Some(Value::Object(schema)), Value::Object(c)) =
                    (p.get_mut("schema"), constraint)
                {
                    schema.extend(c.clone());
                }
            }
        }
    }
    let keyed = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|r| r.get("apiKey").is_some() || r.get("session").is_some())
        });
    let Some(Value::Object(responses)) = op.get_mut("responses") else {
        return;
    };
    let extra: Vec<&str> = if keyed {
        KEYED.iter().chain(ANY.iter()).copied().collect()
    } else {
        ANY.to_vec()
    };
    for status in extra {
        responses.entry(status.to_string()).or_insert_with(|| {
            json!({"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        });
    }
    for (status, r) in responses.iter_mut() {
        let problem = r.get("content").and_then(|c| c.get(PROBLEM_JSON)).is_some();
        if !problem {
            continue;
        }
        let codes: Vec<&str> = CODES
            .iter()
            .filter(|(_, s, _)| s.to_string() == *status)
            .map(|(c, _, _)| *c)
            .collect();
        if let Some(m) = r.as_object_mut() {
            m.insert(
                "description".into(),
                json!(format!("problem; code one of: {}", codes.join(", "))),
            );
        }
    }
}

/// Adds the bearer schemes the operations name (`apiKey`, `session`).
fn security_scheme(doc: &mut Value) {
    let mut schemes = Map::new();
    schemes.insert(
        "apiKey".into(),
        json!({"type": "http", "scheme": "bearer",
            "description": "an API key from `custos keys create --accessor NAME`"}),
    );
    schemes.insert(
        "session".into(),
        json!({"type": "http", "scheme": "bearer",
            "description": "a person's session from `POST /v1/people/sign-in/verify` (`custos_session_…`); it reaches /v1/me only"}),
    );
    set(
        doc,
        &["components"],
        "securitySchemes",
        Value::Object(schemes),
    );
}
