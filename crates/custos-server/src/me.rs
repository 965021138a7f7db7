//! `/v1/me…`: a signed-in person's own side of the vault. Every route takes a
//! [`Person`](crate::people::Person) (a session, never an API key) and reaches that person's
//! subjects only.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::people::Person;
use crate::problem::Problem;

/// What the vault holds about the signed-in person.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    /// One entry per subject the session reaches.
    pub subjects: Vec<MeSubject>,
    /// When the session signed in, UTC.
    #[schema(format = DateTime)]
    pub signed_in: String,
    /// When the session expires, UTC.
    #[schema(format = DateTime)]
    pub expires: String,
}

/// One of the person's subjects, without values.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeSubject {
    /// The subject's id.
    #[schema(format = Uuid)]
    pub id: String,
    /// `active`, `deactivated` or `erased`.
    pub status: String,
    /// The services that collected about the person, and the person's role in each.
    pub services: Vec<ServiceRole>,
    /// The categories held.
    pub categories: Vec<String>,
    /// When the subject was created, UTC.
    #[schema(format = DateTime)]
    pub created: String,
}

/// A service and the person's role in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceRole {
    /// The service.
    pub service: String,
    /// The person's role in it.
    pub role: String,
}

/// `GET /v1/me` — the overview of the person's subjects: ids, status, services and roles,
/// categories held; no values. Ledgered, per subject.
#[utoipa::path(operation_id = "me", get, path = "/v1/me", tag = "people",
    responses(
        (status = 200, description = "the person's subjects", body = MeOut),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn overview(person: Person) -> Result<Json<MeOut>, Problem> {
    let subjects = person.run(|v, p| v.person_overview(p)).await?;
    Ok(Json(MeOut {
        subjects: subjects
            .into_iter()
            .map(|s| MeSubject {
                id: s.id.to_string(),
                status: s.status,
                services: s
                    .services
                    .into_iter()
                    .map(|(service, role)| ServiceRole { service, role })
                    .collect(),
                categories: s.categories,
                created: s.created,
            })
            .collect(),
        signed_in: person.principal().signed_in(),
        expires: person.principal().expires(),
    }))
}
