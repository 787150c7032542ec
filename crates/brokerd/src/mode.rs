//! Which services one process runs: all of them (embedded mode), one alone (as production runs
//! them, on its configured address), or a chosen few sharing the process on loopback ports.

use std::collections::BTreeSet;

use crate::service::{Service, UnknownService};

/// The services this process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    services: BTreeSet<Service>,
}

impl Mode {
    /// Every service: the embedded mode.
    pub fn all() -> Self {
        Self {
            services: Service::ALL.into_iter().collect(),
        }
    }

    /// The services named (`brokerd token access`); none names them all.
    pub fn parse<S: AsRef<str>>(
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, UnknownService> {
        let services = names
            .into_iter()
            .map(|name| name.as_ref().parse())
            .collect::<Result<BTreeSet<Service>, _>>()?;
        Ok(if services.is_empty() {
            Self::all()
        } else {
            Self { services }
        })
    }

    /// Whether this process runs `service`.
    pub fn runs(&self, service: Service) -> bool {
        self.services.contains(&service)
    }

    /// Every service: the embedded mode.
    pub fn is_embedded(&self) -> bool {
        self.services.len() == Service::ALL.len()
    }

    /// One service alone, as production runs them: it serves on its configured address.
    pub fn is_alone(&self) -> bool {
        self.services.len() == 1
    }

    /// The name traces and logs carry.
    pub fn process_name(&self) -> String {
        match self.services.iter().next() {
            Some(service) if self.is_alone() => format!("broker-{}", service.name()),
            _ => "brokerd".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_names_is_embedded_and_names_pick_services() {
        assert_eq!(Mode::parse(Vec::<String>::new()), Ok(Mode::all()));
        assert!(Mode::all().is_embedded());
        let alone = Mode::parse(["token"]).unwrap();
        assert!(alone.is_alone() && alone.runs(Service::Token) && !alone.runs(Service::Access));
        assert_eq!(alone.process_name(), "broker-token");
        let few = Mode::parse(["filetransfer", "events", "events"]).unwrap();
        assert!(!few.is_alone() && !few.is_embedded());
        assert_eq!(few.process_name(), "brokerd");
        assert_eq!(
            Mode::parse(["token", "tokens"]),
            Err(UnknownService("tokens".to_owned()))
        );
    }
}
