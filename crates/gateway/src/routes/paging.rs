//! Paging in the two shapes the public API uses: the admin API's `?pageToken=&pageSize=`
//! answered with `nextPageToken`, and the Resource Registry's `?token=` answered with the
//! absolute URL of the next page (`links.next`, left out on the last page, as Altinn's
//! `Url.Link` and its serializer write it; or a `Link` header where the body is a bare array).
//!
//! Tokens are the services' opaque continuation tokens, passed through unchanged.

use std::fmt::Write;

use axum::extract::FromRequestParts;
use broker_proto::common::{PageInfo, PageRequest};
use http::request::Parts;
use http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::binding::{QueryBinding, QueryModel};

/// The admin API's paging.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct PageQuery {
    /// `nextPageToken` of the previous page.
    page_token: Option<String>,
    /// Items per page; the service caps it.
    page_size: Option<u32>,
}

impl PageQuery {
    /// The page request it asks for.
    pub fn request(self) -> Option<PageRequest> {
        page_request(self.page_token, self.page_size)
    }
}

/// The Resource Registry's paging: the token comes from the previous page's next link; a page
/// size is Broker's (Altinn's sizes are fixed).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct TokenQuery {
    /// Continuation token, from the previous page's next link.
    pub token: Option<String>,
    /// Items per page (an extension: Altinn's pages have a fixed size, which is the default).
    pub page_size: Option<u32>,
}

impl TokenQuery {
    /// The page request it asks for.
    pub fn request(&self) -> Option<PageRequest> {
        page_request(self.token.clone(), self.page_size)
    }

    /// The query parameters a next link repeats.
    pub fn params(&self) -> Vec<(&'static str, Option<String>)> {
        vec![("pageSize", self.page_size.map(|size| size.to_string()))]
    }
}

/// A page request for a token (none on the first page) and a size (0 = the service's default).
pub fn page_request(token: Option<String>, size: Option<u32>) -> Option<PageRequest> {
    Some(PageRequest {
        token: token.unwrap_or_default(),
        size: size.unwrap_or_default(),
    })
}

/// The next page's token of an answer; `None` on the last page.
pub fn next_token(page: Option<PageInfo>) -> Option<String> {
    page.map(|page| page.next_token)
        .filter(|token| !token.is_empty())
}

/// One page as the Resource Registry answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paginated<T> {
    /// Where the next page is.
    pub links: Links,
    /// The items on this page.
    pub data: Vec<T>,
}

/// The links of a page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    /// The next page's absolute URL; left out on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl<T> Paginated<T> {
    /// A page of `data` whose next page, if any, is at `next`.
    pub fn new(data: Vec<T>, next: Option<String>) -> Self {
        Self {
            data,
            links: Links { next },
        }
    }
}

/// Where the client reached the gateway (`https://broker.example`), as ASP.NET's `Url.Link`
/// builds absolute links behind `UseForwardedHeaders`: `X-Forwarded-Proto` and
/// `X-Forwarded-Host` when a proxy sent them, else `http` and `Host`.
#[derive(Debug, Clone)]
pub struct Origin(String);

impl Origin {
    /// The origin of a request with `headers`.
    pub fn of(headers: &HeaderMap) -> Self {
        let first = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        let scheme = first("x-forwarded-proto").unwrap_or("http");
        let host = first("x-forwarded-host")
            .or_else(|| first(header::HOST.as_str()))
            .unwrap_or("localhost");
        Self(format!("{scheme}://{host}"))
    }

    /// The absolute URL of `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

/// The path and query of the next page: `path` with `token` first, then the request's other
/// `params`; `None` on the last page (no token).
pub fn next_link(
    path: &str,
    params: &[(&str, Option<String>)],
    token: Option<String>,
) -> Option<String> {
    let token = token?;
    let mut link = format!("{path}?token={}", encode(&token));
    for (name, value) in params {
        if let Some(value) = value {
            // Writing to a String cannot fail.
            let _ = write!(link, "&{name}={}", encode(value));
        }
    }
    Some(link)
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment or a
/// query value.
pub fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

impl QueryModel for PageQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

impl QueryModel for TokenQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_repeat_the_query_and_encode_the_token() {
        let params = [
            ("include", Some("resources".to_owned())),
            ("resource", None),
            ("pageSize", Some("2".to_owned())),
        ];
        assert_eq!(
            next_link("/a/b", &params, Some("urn:altinn:x y".to_owned())).as_deref(),
            Some("/a/b?token=urn%3Aaltinn%3Ax%20y&include=resources&pageSize=2")
        );
        assert_eq!(next_link("/a", &params, None), None);
    }

    #[test]
    fn links_are_absolute_as_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "gateway:8080".parse().unwrap());
        assert_eq!(Origin::of(&headers).url("/x"), "http://gateway:8080/x");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        headers.insert("x-forwarded-host", "broker.example, proxy".parse().unwrap());
        assert_eq!(Origin::of(&headers).url("/x"), "https://broker.example/x");
        let last: Paginated<u8> = Paginated::new(vec![], None);
        assert_eq!(
            serde_json::to_string(&last).unwrap(),
            r#"{"links":{},"data":[]}"#
        );
    }

    #[test]
    fn empty_tokens_end_the_listing() {
        let last = PageInfo {
            next_token: String::new(),
        };
        assert_eq!(next_token(Some(last)), None);
        assert_eq!(next_token(None), None);
    }
}
