//! Paging in the two shapes the public API uses: the admin API's `?pageToken=&pageSize=`
//! answered with `nextPageToken`, and the Resource Registry's `?token=&pageSize=` answered with
//! the URL of the next page (`links.next`, or a `Link` header where the body is a bare array).
//!
//! Tokens are the services' opaque continuation tokens, passed through unchanged.

use std::fmt::Write;

use broker_proto::common::{PageInfo, PageRequest};
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

/// The Resource Registry's paging: the token comes from the previous page's next link.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct TokenQuery {
    /// Continuation token, from the previous page's next link.
    pub token: Option<String>,
    /// Items per page; the service caps it.
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
    /// The items on this page.
    pub data: Vec<T>,
    /// Where the next page is.
    pub links: Links,
}

/// The links of a page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    /// The next page's URL (path and query); `null` on the last page.
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

/// The URL of the next page: `path` with the request's other `params` and `token`, or `None`
/// on the last page (no token). Relative to the gateway's origin, which it cannot know behind
/// proxies.
pub fn next_link(
    path: &str,
    params: &[(&str, Option<String>)],
    token: Option<String>,
) -> Option<String> {
    let token = token?;
    let mut link = format!("{path}?");
    for (name, value) in params {
        if let Some(value) = value {
            // Writing to a String cannot fail.
            let _ = write!(link, "{name}={}&", encode(value));
        }
    }
    let _ = write!(link, "token={}", encode(&token));
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
            Some("/a/b?include=resources&pageSize=2&token=urn%3Aaltinn%3Ax%20y")
        );
        assert_eq!(next_link("/a", &params, None), None);
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
