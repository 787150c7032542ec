//! `brokerd migrate`: brings services' databases up to date and returns, so a deployment can
//! migrate once (a Kubernetes Job) before any replica of the new version starts.
//!
//! It opens each service's store exactly as the service does at start-up (`open_store`, which
//! applies the embedded migrations), so there is one migration path, not two.

use anyhow::Context;
use broker_common::config::CommonConfig;

use crate::service::{Service, UnknownService};

/// Why the services named to `brokerd migrate` cannot be migrated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    /// A name that is no service.
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    /// A service that keeps no database (the gateway).
    #[error("the {0} service has no database to migrate")]
    NoDatabase(Service),
}

/// The services to migrate: those named, or every service with a database when none is.
pub fn targets<S: AsRef<str>>(
    names: impl IntoIterator<Item = S>,
) -> Result<Vec<Service>, MigrateError> {
    let mut services = Vec::new();
    for name in names {
        let service: Service = name.as_ref().parse()?;
        if !service.has_database() {
            return Err(MigrateError::NoDatabase(service));
        }
        if !services.contains(&service) {
            services.push(service);
        }
    }
    if services.is_empty() {
        services.extend(Service::ALL.into_iter().filter(|s| s.has_database()));
    }
    Ok(services)
}

/// Applies `service`'s migrations to the database `common` names (`BROKER_DATABASE_URL`, else
/// its SQLite file in the data directory).
pub async fn migrate(service: Service, common: &CommonConfig) -> anyhow::Result<()> {
    // Each store migrates when it is opened; dropping it closes the connections.
    let migrated = match service {
        Service::Token => broker_token::open_store(common).await.map(drop),
        Service::Access => broker_access::open_store(common).await.map(drop),
        Service::FileTransfer => broker_filetransfer::open_store(common).await.map(drop),
        Service::Events => broker_events::open_store(common).await.map(drop),
        Service::Gateway => Err(MigrateError::NoDatabase(service).into()),
    };
    migrated.with_context(|| format!("migrating the {service} database"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_named_services_with_databases() {
        assert_eq!(
            targets(Vec::<String>::new()),
            Ok(vec![
                Service::Token,
                Service::Access,
                Service::FileTransfer,
                Service::Events
            ])
        );
        assert_eq!(
            targets(["events", "token", "events"]),
            Ok(vec![Service::Events, Service::Token])
        );
        assert_eq!(
            targets(["gateway"]),
            Err(MigrateError::NoDatabase(Service::Gateway))
        );
        assert_eq!(
            targets(["tokens"]),
            Err(MigrateError::UnknownService(UnknownService(
                "tokens".to_owned()
            )))
        );
    }
}
