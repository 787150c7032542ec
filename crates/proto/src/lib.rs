//! The gRPC contracts of every Broker service, generated at build time from `proto/`.
//!
//! This crate holds generated code only; behaviour lives in the service crates. The module tree
//! mirrors the protobuf packages because prost refers across packages by relative paths.

mod generated {
    pub mod broker {
        pub mod common {
            pub mod v1 {
                tonic::include_proto!("broker.common.v1");
            }
        }
        pub mod token {
            pub mod v1 {
                tonic::include_proto!("broker.token.v1");
            }
        }
        pub mod access {
            pub mod v1 {
                tonic::include_proto!("broker.access.v1");
            }
        }
        pub mod filetransfer {
            pub mod v1 {
                tonic::include_proto!("broker.filetransfer.v1");
            }
        }
        pub mod events {
            pub mod v1 {
                tonic::include_proto!("broker.events.v1");
            }
        }
    }
}

/// The access registry.
pub use generated::broker::access::v1 as access;
/// Types shared by every contract.
pub use generated::broker::common::v1 as common;
/// The event service.
pub use generated::broker::events::v1 as events;
/// The file-transfer service.
pub use generated::broker::filetransfer::v1 as filetransfer;
/// The token service.
pub use generated::broker::token::v1 as token;
