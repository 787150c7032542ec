//! `GET /broker/api/v1/filetransfer`: the search. The parameters are bound as Altinn binds them
//! (names in any case, enums by name or number, times in any ISO 8601 form), so a typo is a 400
//! naming the parameter rather than an empty answer.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use broker_proto::filetransfer as pb;

use super::wire::{SearchQuery, SearchRole};
use super::{READ, SERVICE_OWNER, Searcher, WRITE};
use crate::auth::{Authorized, refused};
use crate::binding::ApiQuery;
use crate::clients::forward;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// The ids of the caller's file transfers on a resource that match the filters (at most 100);
/// with `role=ServiceOwner` (scope `altinn:serviceowner`), every transfer of a resource the
/// caller owns, e.g. `?resourceId=…&status=Failed&role=ServiceOwner`.
#[utoipa::path(get, path = "/broker/api/v1/filetransfer", tag = "filetransfer",
    security(("bearer" = ["altinn:broker.read", "altinn:broker.write", "altinn:serviceowner"])),
    params(SearchQuery),
    responses(
        (status = 200, description = "Matching file transfer ids", body = Vec<String>),
        (status = 400, description = "A parameter is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
    ))]
pub async fn search(
    State(state): State<AppState>,
    caller: Authorized<Searcher>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<String>>, Response> {
    let scopes: &[&str] = if query.role == Some(SearchRole::ServiceOwner) {
        &[SERVICE_OWNER]
    } else {
        &[READ, WRITE]
    };
    // The policy let in any of the three; the role decides which it must have been.
    caller.require_any_scope(scopes).map_err(refused)?;
    let mut client = state.clients.filetransfer();
    let found = forward(
        &caller,
        scopes,
        |principal| filters(query, principal),
        |request| client.search(request),
    )
    .await
    .map_err(IntoResponse::into_response)?;
    Ok(Json(found.file_transfer_ids))
}

/// The contract's search for the bound parameters.
fn filters(query: SearchQuery, principal: broker_proto::common::Principal) -> pb::SearchRequest {
    pb::SearchRequest {
        principal: Some(principal),
        resource_id: query.resource_id.0,
        status: query
            .status
            .map(|s| s.name())
            .unwrap_or_default()
            .to_owned(),
        recipient_status: query
            .recipient_status
            .map(|s| s.name())
            .unwrap_or_default()
            .to_owned(),
        from: query.from.map(|t| t.rfc3339()).unwrap_or_default(),
        to: query.to.map(|t| t.rfc3339()).unwrap_or_default(),
        order_ascending: query.order_ascending.unwrap_or_default(),
        role: query
            .role
            .map(SearchRole::name)
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::parse_query;

    fn search(query: &str) -> Result<pb::SearchRequest, broker_common::Problem> {
        parse_query::<SearchQuery>(query).map(|q| filters(q, Default::default()))
    }

    #[test]
    fn binds_enums_by_name_or_number_and_times_in_any_form() {
        let filters = search(
            "ResourceId=urn:altinn:resource:broker-demo&status=published&recipientStatus=1\
             &role=recipient&from=2026-08-01%2002:00:00&to=2026-08-02&orderAscending=True",
        )
        .unwrap();
        assert_eq!(filters.resource_id, "broker-demo");
        assert_eq!(filters.status, "Published");
        assert_eq!(filters.recipient_status, "DownloadStarted");
        assert_eq!(filters.role, "Recipient");
        assert_eq!(filters.from, "2026-08-01T02:00:00Z");
        assert_eq!(filters.to, "2026-08-02T00:00:00Z");
        assert!(filters.order_ascending);
        assert_eq!(search("resourceId=r&status=3").unwrap().status, "Published");
    }

    #[test]
    fn answers_as_asp_net_does_for_bad_values() {
        let errors = |query| *search(query).unwrap_err().errors.unwrap();
        assert_eq!(
            errors("status=Published")["resourceId"],
            ["The resourceId field is required."]
        );
        assert_eq!(
            errors("resourceId=r&status=Sent")["status"],
            ["The value 'Sent' is not valid."]
        );
        assert_eq!(
            errors("resourceId=r&role=Both")["role"],
            ["The value 'Both' is not valid."]
        );
        assert_eq!(
            errors("resourceId=r&status=9")["status"],
            ["The value '9' is invalid."]
        );
        assert_eq!(
            errors("resourceId=r&from=yesterday")["from"],
            ["The value 'yesterday' is not valid."]
        );
    }
}
