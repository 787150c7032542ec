//! COMPATIBILITY.md against the gateway: each operation it lists is sent to the real router,
//! which must route it to that operation exactly when the page says Broker serves it, and the
//! page and `/openapi.json` must name the same operations.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use http::{Method, StatusCode};
use tower::ServiceExt;

use crate::support::{gateway, get, send};

const PAGE: &str = include_str!("../../../../COMPATIBILITY.md");

/// The route template a request was matched to, kept on its answer.
#[derive(Clone)]
struct Routed(String);

/// Marks each answer with the template its request was routed by.
async fn mark_route(request: Request, next: Next) -> Response {
    let routed = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| Routed(path.as_str().to_owned()));
    let mut response = next.run(request).await;
    if let Some(routed) = routed {
        response.extensions_mut().insert(routed);
    }
    response
}

/// How the page marks an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Identical,
    Extension,
    Differs,
    Missing,
}

impl Mark {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "identical" => Some(Self::Identical),
            "extension" => Some(Self::Extension),
            "differs" => Some(Self::Differs),
            "missing" => Some(Self::Missing),
            _ => None,
        }
    }

    fn served(self) -> bool {
        self != Self::Missing
    }
}

/// Every operation row of the page: `(method, path)` to its mark, each listed once.
fn operations() -> BTreeMap<(Method, String), Mark> {
    let mut operations = BTreeMap::new();
    for line in PAGE.lines() {
        let mut cells = line.split('|').map(str::trim).skip(1);
        let (Some(operation), Some(mark)) = (cells.next(), cells.next()) else {
            continue;
        };
        let Some(operation) = operation
            .strip_prefix('`')
            .and_then(|o| o.strip_suffix('`'))
        else {
            continue;
        };
        let Some((method, path)) = operation.split_once(' ') else {
            continue;
        };
        let Ok(method) = method.parse::<Method>() else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let mark = Mark::parse(mark)
            .unwrap_or_else(|| panic!("`{operation}` is marked {mark:?}, not a known mark"));
        let previous = operations.insert((method, path.to_owned()), mark);
        assert!(previous.is_none(), "`{operation}` is listed twice");
    }
    operations
}

/// `path` with each `{parameter}` filled with a value that names no real object.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "compat-probe"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the router serves `method` on the template `path`: the request is routed by that
/// very template and not answered "method not allowed".
async fn routed(method: &Method, path: &str) -> bool {
    let app = gateway().layer(from_fn(mark_route));
    let request = Request::builder()
        .method(method.clone())
        .uri(concrete(path))
        .body(Body::empty())
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    let template = response.extensions().get::<Routed>().map(|r| r.0.as_str());
    template == Some(path) && response.status() != StatusCode::METHOD_NOT_ALLOWED
}

#[tokio::test]
async fn the_router_serves_exactly_what_compatibility_md_says_it_serves() {
    let operations = operations();
    let count = |mark| operations.values().filter(|m| **m == mark).count();
    // The page lists every Altinn Broker operation (24 and the removed legacy API's 7) and
    // more; a page read as nothing would pass every check below.
    assert!(operations.len() > 90, "{} rows read", operations.len());
    assert!(count(Mark::Identical) > 0 && count(Mark::Missing) > 0);
    let mut wrong = Vec::new();
    for ((method, path), mark) in &operations {
        if routed(method, path).await != mark.served() {
            wrong.push(format!("{method} {path} is marked {mark:?}"));
        }
    }
    assert!(wrong.is_empty(), "the router disagrees: {wrong:#?}");
}

#[tokio::test]
async fn compatibility_md_and_openapi_name_the_same_operations() {
    let (_, document) = send(
        &gateway(),
        get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    let mut described = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if let Ok(method) = method.to_uppercase().parse::<Method>() {
                described.insert((method, path.clone()));
            }
        }
    }
    let listed: BTreeSet<_> = operations()
        .into_iter()
        .filter(|(_, mark)| mark.served())
        .map(|(operation, _)| operation)
        .collect();
    let unlisted: Vec<_> = described.difference(&listed).collect();
    let undescribed: Vec<_> = listed.difference(&described).collect();
    assert!(
        unlisted.is_empty(),
        "in /openapi.json, not on the page: {unlisted:?}"
    );
    assert!(
        undescribed.is_empty(),
        "served on the page, not in /openapi.json: {undescribed:?}"
    );
}
