//! `GET /broker/api/v1/filetransfer`: the search. The query is validated here (required
//! resource, enum values, RFC 3339 times) so a typo is a 400 naming the parameter rather than an
//! empty answer; enum values are matched case-insensitively, as ASP.NET binds them.

use axum::Json;
use axum::extract::{Query, State};
use broker_common::Problem;
use broker_proto::filetransfer as pb;
use chrono::{DateTime, SecondsFormat, Utc};

use super::wire::{FILE_TRANSFER_STATUSES, RECIPIENT_STATUSES, SEARCH_ROLES, SearchQuery};
use super::{READ, SERVICE_OWNER, WRITE};
use crate::auth::Authenticated;
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
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
    ))]
pub async fn search(
    State(state): State<AppState>,
    caller: Authenticated,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Vec<String>>, Problem> {
    let scopes: &[&str] = if query
        .role
        .as_deref()
        .is_some_and(|role| role.eq_ignore_ascii_case("ServiceOwner"))
    {
        &[SERVICE_OWNER]
    } else {
        &[READ, WRITE]
    };
    caller.require_any_scope(scopes)?;
    let filters = validate(query)?;
    let mut client = state.clients.filetransfer();
    let found = forward(
        &caller,
        scopes,
        |principal| pb::SearchRequest {
            principal: Some(principal),
            ..filters
        },
        |request| client.search(request),
    )
    .await?;
    Ok(Json(found.file_transfer_ids))
}

/// The search's filters, or a 400 naming every invalid parameter.
fn validate(query: SearchQuery) -> Result<pb::SearchRequest, Problem> {
    let mut errors = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut fail = |name: &str, message: String| {
        errors.entry(name.to_owned()).or_default().push(message);
    };
    let resource_id = query.resource_id.unwrap_or_default();
    if resource_id.trim().is_empty() {
        fail("resourceId", "is required".to_owned());
    }
    let status = one_of("status", query.status, &FILE_TRANSFER_STATUSES, &mut fail);
    let recipient_status = one_of(
        "recipientStatus",
        query.recipient_status,
        &RECIPIENT_STATUSES,
        &mut fail,
    );
    let role = one_of("role", query.role, &SEARCH_ROLES, &mut fail);
    let from = time("from", query.from, &mut fail);
    let to = time("to", query.to, &mut fail);
    let order_ascending = match query
        .order_ascending
        .as_deref()
        .map(str::to_ascii_lowercase)
    {
        None => false,
        Some(text) if text == "true" => true,
        Some(text) if text == "false" => false,
        Some(text) => {
            fail("orderAscending", format!("{text:?} is not true or false"));
            false
        }
    };
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    Ok(pb::SearchRequest {
        principal: None,
        resource_id,
        status,
        recipient_status,
        from,
        to,
        order_ascending,
        role,
    })
}

/// `value` written as the member of `allowed` it names case-insensitively; empty when absent.
fn one_of(
    name: &str,
    value: Option<String>,
    allowed: &[&str],
    fail: &mut impl FnMut(&str, String),
) -> String {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return String::new();
    };
    match allowed.iter().find(|a| a.eq_ignore_ascii_case(&value)) {
        Some(canonical) => (*canonical).to_owned(),
        None => {
            fail(
                name,
                format!("{value:?} is not one of {}", allowed.join(", ")),
            );
            String::new()
        }
    }
}

/// `value` as RFC 3339 in UTC; empty when absent.
fn time(name: &str, value: Option<String>, fail: &mut impl FnMut(&str, String)) -> String {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return String::new();
    };
    match DateTime::parse_from_rfc3339(&value) {
        Ok(time) => time
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        Err(error) => {
            fail(name, format!("{value:?} is not an RFC 3339 time: {error}"));
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query string `pairs` make, as axum parses it.
    fn query(pairs: &[(&str, &str)]) -> SearchQuery {
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let uri: http::Uri = format!("/?{}", text.join("&")).parse().unwrap();
        Query::<SearchQuery>::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn normalises_enums_and_times() {
        let filters = validate(query(&[
            ("resourceId", "broker-demo"),
            ("status", "published"),
            ("recipientStatus", "DOWNLOADSTARTED"),
            ("role", "recipient"),
            ("from", "2026-08-01T02:00:00%2B02:00"),
            ("orderAscending", "True"),
        ]))
        .unwrap();
        assert_eq!(filters.status, "Published");
        assert_eq!(filters.recipient_status, "DownloadStarted");
        assert_eq!(filters.role, "Recipient");
        assert_eq!(filters.from, "2026-08-01T00:00:00Z");
        assert!(filters.order_ascending);
    }

    #[test]
    fn names_every_invalid_parameter() {
        let problem = validate(query(&[
            ("status", "Sent"),
            ("from", "yesterday"),
            ("orderAscending", "maybe"),
        ]))
        .unwrap_err();
        let errors = problem.errors.unwrap();
        let names: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(names, ["from", "orderAscending", "resourceId", "status"]);
    }
}
