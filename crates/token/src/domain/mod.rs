//! The token service's rules, free of I/O: what a valid client registration, assertion and
//! issued token look like, and the errors each rule produces.

pub mod client;
pub mod error;
pub mod grant;
pub mod jwk;
pub mod token;
