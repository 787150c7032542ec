//! The operator's dead letters: `/admin/v1/events/dead-letters…`, guarded by the admin
//! credential, which is forwarded so the event service checks it again.

use axum::Json;
use axum::extract::State;
use broker_common::Problem;
use broker_proto::events as pb;

use super::wire::{DeadLetterPage, DeadLetterView, RedriveBody, Redriven};
use crate::auth::Admin;
use crate::binding::{ApiJson, ApiQuery, JsonBody};
use crate::clients::call;
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::{PageQuery, next_token};
use crate::state::AppState;

/// Deliveries that ran out of attempts, a page at a time.
#[utoipa::path(get, path = "/admin/v1/events/dead-letters", tag = "admin",
    security(("admin" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLetterPage),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
    ))]
pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<DeadLetterPage>, Problem> {
    let request = admin.request(pb::ListDeadLettersRequest {
        page: page.request(),
    });
    let listed = call(state.clients.events().list_dead_letters(request)).await?;
    let dead_letters = listed
        .dead_letters
        .into_iter()
        .map(DeadLetterView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(DeadLetterPage {
        dead_letters,
        next_page_token: next_token(listed.page),
    }))
}

/// Queues dead letters for delivery again.
#[utoipa::path(post, path = "/admin/v1/events/dead-letters/redrive", tag = "admin",
    security(("admin" = [])),
    request_body = RedriveBody,
    responses(
        (status = 200, description = "How many were queued again", body = Redriven),
        (status = 400, description = "The body is not `{\"ids\": [...]}`", body = ProblemDetails),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 415, description = "The body is not JSON", body = ProblemDetails),
    ))]
pub async fn redrive(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<RedriveBody>,
) -> Result<Json<Redriven>, Problem> {
    let request = admin.request(pb::RedriveRequest { ids: body.ids });
    let redriven = call(state.clients.events().redrive(request)).await?;
    Ok(Json(Redriven {
        redriven: redriven.redriven,
    }))
}

impl JsonBody for super::wire::RedriveBody {
    const PARAMETER: &'static str = "body";
    const TYPE: &'static str = "RedriveBody";
}
