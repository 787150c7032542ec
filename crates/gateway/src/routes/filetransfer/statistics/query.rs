//! The report's query, Altinn's `[FromQuery] GetMonthlyStatisticsReportRequest`: one model, so
//! ASP.NET's messages name its properties ("The value 'abc' is not valid for Year."). An absent
//! `year` or `month` is 0, which the service refuses with code 6003, as Altinn does.

use serde::Deserialize;
use utoipa::IntoParams;

use crate::binding::{QueryBinding, QueryModel, ResourceId};

/// The report's parameters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StatisticsQuery {
    /// The year, 1–9999.
    #[serde(default)]
    pub year: i32,
    /// The month, 1–12.
    #[serde(default)]
    pub month: i32,
    /// Only this resource (with or without `urn:altinn:resource:`); all the caller's when
    /// absent.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub resource_id: Option<ResourceId>,
    /// Whether rows show the sender and the recipient (default true).
    #[serde(default = "included")]
    pub include_end_user: bool,
    /// Whether rows show the vendors, the organisations of the Maskinporten clients that acted
    /// (default false).
    #[serde(default)]
    pub include_vendor: bool,
}

/// `includeEndUser` left out.
fn included() -> bool {
    true
}

impl QueryModel for StatisticsQuery {
    const BINDING: QueryBinding = QueryBinding::Model;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::parse_query;

    #[test]
    fn binds_as_altinns_model_with_its_defaults() {
        let query: StatisticsQuery = parse_query("YEAR=2026&month= 04 ").unwrap();
        assert_eq!((query.year, query.month), (2026, 4));
        assert!(query.include_end_user && !query.include_vendor);
        assert_eq!(query.resource_id, None);
        let query: StatisticsQuery =
            parse_query("resourceId=urn:altinn:resource:r&includeEndUser=FALSE&includeVendor=true")
                .unwrap();
        assert_eq!((query.year, query.month), (0, 0), "refused later with 6003");
        assert_eq!(query.resource_id, Some(ResourceId("r".into())));
        assert!(!query.include_end_user && query.include_vendor);
    }

    /// Mirrors the binding failure of Altinn's statistics controller.
    #[test]
    fn a_bad_value_names_the_property() {
        let problem = parse_query::<StatisticsQuery>("year=abc&month=1").unwrap_err();
        assert_eq!(
            problem.errors.unwrap()["Year"],
            ["The value 'abc' is not valid for Year."]
        );
        let problem = parse_query::<StatisticsQuery>("year=2026&includeVendor=1").unwrap_err();
        assert_eq!(
            problem.errors.unwrap()["IncludeVendor"],
            ["The value '1' is not valid for IncludeVendor."]
        );
    }
}
