//! `POST /v1/decisions`: the decision alone, over the subject's stored state, no data.

use axum::Json;
use serde_json::{Value, json};

use crate::Caller;
use crate::input::{self, Body};
use crate::problem::Problem;

/// `{subject, purpose, categories?, recipient?, reference?}` →
/// `{subject, purpose, effect, permitted[], withheld{}, denial?, ground?, disclosure_to?,
/// clauses[], ledger_seq}`. A denial is an answer here (200), not an error: the caller asked
/// what the policy decides.
pub async fn decide(caller: Caller, body: Body) -> Result<Json<Value>, Problem> {
    let mut f = body.fields();
    let subject = input::subject_id(&f.string("subject")?).map_err(|_| {
        Problem::field(
            "invalid_subject_id",
            "subject",
            "a subject id is a lowercase uuid, as `POST /v1/subjects` returned it",
        )
    })?;
    let purpose = f.string("purpose")?;
    let read = custos_vault::ReadInput {
        purpose: purpose.clone(),
        categories: f.opt_strings("categories")?,
        recipient: f.opt_string("recipient")?,
        reference: f.opt_string("reference")?,
    };
    f.finish()?;
    let s = subject.clone();
    let d = caller.run(move |v, a| v.decide(a, &s, &read)).await?;
    caller.metrics().decision("decide", &d.effect);
    // An erased person, or one under the minimum age, is answered as one who never was:
    // the answer does not reveal that Custos ever held them (the ledger keeps the reason).
    if let Some(code @ ("subject_erased" | "subject_under_minimum_age")) = d.denial.as_deref() {
        return Err(crate::subjects::denial_problem(code, &purpose));
    }
    Ok(Json(json!({
        "subject": subject.as_str(),
        "purpose": purpose,
        "effect": d.effect,
        "permitted": d.permitted,
        "withheld": d.withheld,
        "denial": d.denial,
        "ground": d.ground,
        "disclosure_to": d.disclosure_to,
        "clauses": d.clauses,
        "ledger_seq": d.ledger_seq,
    })))
}
