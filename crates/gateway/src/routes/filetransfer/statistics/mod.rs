//! `GET /broker/api/v1/statistics/monthly`: Altinn's monthly statistics report for a service
//! owner, as the CSV file Altinn answers with or, by `Accept: application/json` (our extension),
//! as the same rows in JSON.
//!
//! Checks come in Altinn's order: the `Accept` header (406, before the token is looked at), the
//! token and its scope (401, 403), the query's binding (400 validation problem, see `query`),
//! then the service's rules (codes 6003, 6005, 25 and 6).

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use broker_common::Problem;
use broker_proto::filetransfer as pb;
use http::request::Parts;
use http::{HeaderValue, header};

use super::wire::MonthlyStatisticsRow;
use super::{SERVICE_OWNER, ServiceOwner};
use crate::auth::Authorized;
use crate::binding::ApiQuery;
use crate::clients::forward;
use crate::negotiation;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

mod csv;
mod query;

use query::StatisticsQuery;

/// The report's content type: exactly this, without a charset, as Altinn's.
const TEXT_CSV: &str = "text/csv";
/// The JSON view's content type.
const APPLICATION_JSON: &str = "application/json";
/// What the endpoint produces: Altinn's CSV, and our JSON view.
const PRODUCES: [&str; 2] = [TEXT_CSV, APPLICATION_JSON];

/// The statistics route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/broker/api/v1/statistics/monthly", get(monthly_statistics))
}

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// Altinn's CSV file.
    Csv,
    /// The same rows as JSON objects.
    Json,
}

impl<S: Send + Sync> FromRequestParts<S> for Representation {
    type Rejection = Response;

    /// The CSV without an `Accept` header, or when it lists `text/csv` or `*/*` (Altinn's rule:
    /// media types compared without their parameters, so `q=0` counts too); the JSON view when
    /// it lists `application/json` only; else Altinn's 406.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let headers = &parts.headers;
        if !negotiation::acceptable(headers, &PRODUCES) {
            return Err(negotiation::not_acceptable(&PRODUCES));
        }
        let json_only = negotiation::lists(headers, APPLICATION_JSON)
            && !negotiation::lists(headers, TEXT_CSV)
            && !negotiation::lists(headers, "*/*");
        Ok(if json_only { Self::Json } else { Self::Csv })
    }
}

/// Altinn's monthly statistics of the caller's resources for one month, as a CSV file with one
/// row per resource, sender and recipient (and their vendors with `includeVendor=true`):
/// transfers created and published in the month and downloads started and confirmed in it,
/// each counted per (transfer, recipient). Computed live from the transfers' histories.
#[utoipa::path(get, path = "/broker/api/v1/statistics/monthly", tag = "broker-settings",
    security(("bearer" = ["altinn:serviceowner"])),
    params(
        ("year" = i32, Query, description = "The year, 1–9999 (as .NET reads an int: `0x…` \
            and surrounding spaces too)", minimum = 1, maximum = 9999),
        ("month" = i32, Query, description = "The month, 1–12", minimum = 1, maximum = 12),
        ("resourceId" = Option<String>, Query, description = "Only this resource (a \
            `urn:altinn:resource:` prefix is dropped); all the caller's resources when absent \
            or blank"),
        ("includeEndUser" = Option<bool>, Query, description = "Whether rows show the sender \
            and the recipient (default true)"),
        ("includeVendor" = Option<bool>, Query, description = "Whether rows show the vendors, \
            the organisations of the Maskinporten clients that acted (default false)"),
        ("Accept" = Option<String>, Header, description = "`text/csv`, `*/*` or none: the \
            CSV; `application/json` alone: the rows as JSON; anything else: 406"),
    ),
    responses(
        (status = 200, description = "The report: the header line and one line per row, `\\n` \
            after each (the header alone for an empty month)",
            content(
                (String = "text/csv", example = json!(
                    "year,month,resourceId,senderVendor,recipientVendor,sender,recipient,\
                     totalFileTransfers,uploadCount,totalTransferDownloadAttempts,\
                     transfersWithDownloadConfirmed\n\
                     2026,1,my-resource,,,0192:991825827,0192:986252932,3,2,3,2\n")),
                (Vec<MonthlyStatisticsRow> = "application/json"),
            ),
            headers(("Content-Disposition" = String, description = "For the CSV: `attachment; \
                filename=monthly_statistics_<resource or all-resources>_<yyyy-MM>.csv; \
                filename*=UTF-8''…`"))),
        (status = 400, description = "A parameter is not a number or boolean (a validation \
            problem), the year or month is out of range (`BRO-06003`), neither end users nor \
            vendors are included (`BRO-06005`), or the resource is not configured \
            (`BRO-00025`)", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token; or the resource \
            is another service owner's (`BRO-00006`)", body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 406, description = "The `Accept` header lists none of `text/csv`, \
            `application/json` and `*/*`: Altinn's text, no content type"),
    ))]
pub async fn monthly_statistics(
    representation: Representation,
    State(state): State<AppState>,
    caller: Authorized<ServiceOwner>,
    ApiQuery(params): ApiQuery<StatisticsQuery>,
) -> Result<Response, Problem> {
    let mut client = state.clients.filetransfer();
    let report = forward(
        &caller,
        &[SERVICE_OWNER],
        |principal| pb::MonthlyStatisticsRequest {
            principal: Some(principal),
            resource_id: params.resource_id.map(|id| id.0).unwrap_or_default(),
            year: params.year,
            month: params.month,
            include_end_user: params.include_end_user,
            include_vendor: params.include_vendor,
        },
        |request| client.monthly_statistics(request),
    )
    .await?;
    let (year, month) = (report.year, report.month);
    let rows: Vec<MonthlyStatisticsRow> = report
        .rows
        .into_iter()
        .map(|row| MonthlyStatisticsRow::new(year, month, row))
        .collect();
    Ok(match representation {
        Representation::Json => axum::Json(rows).into_response(),
        Representation::Csv => {
            let file_name = csv::file_name(&report.resource_id, year, month);
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(TEXT_CSV)),
                    (header::CONTENT_DISPOSITION, super::attachment(&file_name)),
                ],
                csv::write(&rows),
            )
                .into_response()
        }
    })
}
