//! Router tests of the gateway: every route through the real middleware stack, with the
//! services down (calls must fail as 503 problems) and tokens signed by a test key.

mod access;
mod admin;
mod auth;
mod compatibility;
mod cross_cutting;
mod events;
mod filetransfer;
mod support;
mod token;
