//! The file-transfer service: the Altinn Broker v1 file transfer API behind gRPC, with statuses
//! and their history, service-owner and resource settings, and bytes streamed to object storage.

pub mod domain;
pub mod store;
