//! The access registry's rules, free of I/O: identifiers and their syntax, what a valid resource,
//! policy and access list look like, the authorization decision, the change notices other
//! replicas hear about, and the errors each rule produces.

pub mod access_list;
pub mod change;
pub mod conditions;
pub mod decision;
pub mod error;
pub mod ids;
pub mod policy;
pub mod resource;
