//! Service owners and resources: what a valid one looks like, defaults, and which resources
//! count as active.

use broker_common::identity::OrgNumber;
use serde::{Deserialize, Serialize};

use super::error::{AccessError, FieldErrors, check_len};
use super::ids::{OrgCode, ResourceId};

/// Longest short text (names, titles, status).
pub const MAX_TEXT: usize = 255;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 4000;

/// An organisation registered as a service owner: it may create resources and access lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOwner {
    /// Its organisation number.
    pub org_number: OrgNumber,
    /// Its org code, unique.
    pub org_code: OrgCode,
    /// Display name.
    pub name: String,
}

impl ServiceOwner {
    /// Validates a registration.
    pub fn parse(org_number: &str, org_code: &str, name: &str) -> Result<Self, AccessError> {
        let mut errors = FieldErrors::default();
        let org_number = errors.check("orgNumber", OrgNumber::parse(org_number));
        let org_code = errors.check("orgCode", OrgCode::parse(org_code));
        if name.trim().is_empty() {
            errors.add("name", "required");
        }
        check_len(&mut errors, "name", name, MAX_TEXT);
        errors.finish(|| {
            Some(Self {
                org_number: org_number?,
                org_code: org_code?,
                name: name.to_owned(),
            })
        })
    }
}

/// Text in the three languages Altinn uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizedText {
    /// Bokmål.
    pub nb: String,
    /// Nynorsk.
    pub nn: String,
    /// English.
    pub en: String,
}

impl LocalizedText {
    /// The same text in every language.
    pub fn same(text: &str) -> Self {
        Self {
            nb: text.to_owned(),
            nn: text.to_owned(),
            en: text.to_owned(),
        }
    }

    /// Whether every language is empty.
    pub fn is_empty(&self) -> bool {
        self.nb.is_empty() && self.nn.is_empty() && self.en.is_empty()
    }

    fn check(&self, errors: &mut FieldErrors, field: &str, max: usize) {
        for (language, text) in [("nb", &self.nb), ("nn", &self.nn), ("en", &self.en)] {
            check_len(errors, format!("{field}.{language}"), text, max);
        }
    }
}

/// Defines a closed enum with its canonical names, parsed case-insensitively as .NET does.
macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The canonical name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),+
                }
            }

            /// Parses a name, ignoring case.
            pub fn parse(text: &str) -> Result<Self, String> {
                [$(Self::$variant),+]
                    .into_iter()
                    .find(|value| value.as_str().eq_ignore_ascii_case(text))
                    .ok_or_else(|| {
                        format!("one of {}", [$(stringify!($variant)),+].join(", "))
                    })
            }
        }
    };
}

named_enum!(
    /// The kind of resource, as the Resource Registry names them.
    ResourceType {
        /// Unspecified.
        Default,
        /// A system resource.
        Systemresource,
        /// A Maskinporten scope.
        MaskinportenSchema,
        /// An Altinn 2 service.
        Altinn2Service,
        /// An Altinn 3 app.
        AltinnApp,
        /// A generic resource.
        GenericAccessResource,
        /// A Broker (file transfer) service.
        BrokerService,
        /// A Correspondence service.
        CorrespondenceService,
        /// A consent resource.
        Consent,
        /// An app migrated from Altinn 2.
        MigratedApp,
    }
);

named_enum!(
    /// Whether access lists restrict who may use the resource.
    AccessListMode {
        /// Only members of a connected list may act.
        Enabled,
        /// The policy alone decides.
        Disabled,
    }
);

/// The organisation responsible for a resource: its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompetentAuthority {
    /// Organisation number.
    pub organization: OrgNumber,
    /// Org code.
    pub orgcode: OrgCode,
    /// Name.
    pub name: LocalizedText,
}

/// A resource of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Unique identifier.
    pub identifier: ResourceId,
    /// Title.
    pub title: LocalizedText,
    /// Description.
    pub description: LocalizedText,
    /// Its owner.
    pub has_competent_authority: CompetentAuthority,
    /// Its kind.
    pub resource_type: ResourceType,
    /// Whether access lists apply.
    pub access_list_mode: AccessListMode,
    /// Lifecycle status, free text as in Altinn (`Active`, `Completed`, `Deprecated`, …).
    pub status: String,
    /// Whether rights to it may be delegated.
    pub delegable: bool,
    /// Whether it is listed in public catalogues.
    pub visible: bool,
}

/// Statuses that take a resource out of service.
const INACTIVE_STATUSES: [&str; 2] = ["Withdrawn", "Deprecated"];

impl Resource {
    /// Whether decisions may permit on it.
    pub fn is_active(&self) -> bool {
        !INACTIVE_STATUSES
            .iter()
            .any(|inactive| inactive.eq_ignore_ascii_case(&self.status))
    }
}

/// A resource as a request writes it, before validation.
#[derive(Debug, Clone, Default)]
pub struct ResourceInput {
    /// Identifier.
    pub identifier: String,
    /// Title.
    pub title: LocalizedText,
    /// Description.
    pub description: LocalizedText,
    /// `hasCompetentAuthority.organization`; empty when absent.
    pub authority_organization: String,
    /// `hasCompetentAuthority.orgcode`; empty when absent.
    pub authority_orgcode: String,
    /// `hasCompetentAuthority.name`.
    pub authority_name: LocalizedText,
    /// `resourceType`; empty means `Default`.
    pub resource_type: String,
    /// `accessListMode`; empty means `Disabled`.
    pub access_list_mode: String,
    /// `status`; empty means `Active`.
    pub status: String,
    /// Delegable.
    pub delegable: bool,
    /// Visible.
    pub visible: bool,
}

/// A valid resource whose competent authority may still be incomplete.
#[derive(Debug, Clone)]
pub struct ResourceDraft {
    identifier: ResourceId,
    title: LocalizedText,
    description: LocalizedText,
    organization: Option<OrgNumber>,
    orgcode: Option<OrgCode>,
    authority_name: LocalizedText,
    resource_type: ResourceType,
    access_list_mode: AccessListMode,
    status: String,
    delegable: bool,
    visible: bool,
}

impl ResourceDraft {
    /// Validates every field, reporting all failures at once.
    pub fn parse(input: ResourceInput) -> Result<Self, AccessError> {
        let mut errors = FieldErrors::default();
        let identifier = errors.check("identifier", ResourceId::parse(&input.identifier));
        if input.title.is_empty() {
            errors.add("title", "required in at least one language");
        }
        input.title.check(&mut errors, "title", MAX_TEXT);
        input
            .description
            .check(&mut errors, "description", MAX_DESCRIPTION);
        input
            .authority_name
            .check(&mut errors, "hasCompetentAuthority.name", MAX_TEXT);
        // `Option<Option<_>>`: absent, or present and parsed (the inner `None` = recorded failure).
        let organization = optional(&input.authority_organization).map(|text| {
            errors.check(
                "hasCompetentAuthority.organization",
                OrgNumber::parse_identifier(text),
            )
        });
        let orgcode = optional(&input.authority_orgcode)
            .map(|text| errors.check("hasCompetentAuthority.orgcode", OrgCode::parse(text)));
        let resource_type = match optional(&input.resource_type) {
            None => Some(ResourceType::Default),
            Some(text) => errors.check("resourceType", ResourceType::parse(text)),
        };
        let access_list_mode = match optional(&input.access_list_mode) {
            None => Some(AccessListMode::Disabled),
            Some(text) => errors.check("accessListMode", AccessListMode::parse(text)),
        };
        check_len(&mut errors, "status", &input.status, MAX_TEXT);
        let status = optional(&input.status).unwrap_or("Active").to_owned();
        errors.finish(|| {
            Some(Self {
                identifier: identifier?,
                title: input.title,
                description: input.description,
                organization: organization.flatten(),
                orgcode: orgcode.flatten(),
                authority_name: input.authority_name,
                resource_type: resource_type?,
                access_list_mode: access_list_mode?,
                status,
                delegable: input.delegable,
                visible: input.visible,
            })
        })
    }

    /// The identifier.
    pub fn identifier(&self) -> &ResourceId {
        &self.identifier
    }

    /// The resource, owned by `owner`: a competent authority that names anyone else is refused,
    /// an absent one is filled in from the owner.
    pub fn owned_by(self, owner: &ServiceOwner) -> Result<Resource, AccessError> {
        let names_other = self
            .orgcode
            .as_ref()
            .is_some_and(|code| *code != owner.org_code)
            || self.organization.is_some_and(|org| org != owner.org_number);
        if names_other {
            return Err(AccessError::Forbidden(format!(
                "hasCompetentAuthority must name the caller's organisation ({}, {})",
                owner.org_code, owner.org_number
            )));
        }
        Ok(Resource {
            identifier: self.identifier,
            title: self.title,
            description: self.description,
            has_competent_authority: CompetentAuthority {
                organization: owner.org_number,
                orgcode: owner.org_code.clone(),
                name: if self.authority_name.is_empty() {
                    LocalizedText::same(&owner.name)
                } else {
                    self.authority_name
                },
            },
            resource_type: self.resource_type,
            access_list_mode: self.access_list_mode,
            status: self.status,
            delegable: self.delegable,
            visible: self.visible,
        })
    }
}

fn optional(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> ServiceOwner {
        ServiceOwner::parse("991825827", "digdir", "Digitaliseringsdirektoratet").unwrap()
    }

    fn input() -> ResourceInput {
        ResourceInput {
            identifier: "broker-resource".into(),
            title: LocalizedText::same("Broker resource"),
            ..ResourceInput::default()
        }
    }

    #[test]
    fn defaults_and_owner_fill_in() {
        let resource = ResourceDraft::parse(input())
            .unwrap()
            .owned_by(&owner())
            .unwrap();
        assert_eq!(resource.resource_type, ResourceType::Default);
        assert_eq!(resource.access_list_mode, AccessListMode::Disabled);
        assert_eq!(resource.status, "Active");
        assert!(resource.is_active());
        assert_eq!(resource.has_competent_authority.orgcode.as_str(), "digdir");
        assert_eq!(
            resource.has_competent_authority.name.en,
            "Digitaliseringsdirektoratet"
        );
    }

    #[test]
    fn parses_enums_ignoring_case() {
        let draft = ResourceDraft::parse(ResourceInput {
            resource_type: "brokerservice".into(),
            access_list_mode: "Enabled".into(),
            status: "withdrawn".into(),
            ..input()
        })
        .unwrap();
        let resource = draft.owned_by(&owner()).unwrap();
        assert_eq!(resource.resource_type, ResourceType::BrokerService);
        assert_eq!(resource.access_list_mode, AccessListMode::Enabled);
        assert!(!resource.is_active());
    }

    #[test]
    fn reports_every_invalid_field() {
        let Err(AccessError::Invalid(errors)) = ResourceDraft::parse(ResourceInput {
            identifier: "Not A Slug".into(),
            title: LocalizedText::default(),
            description: LocalizedText::same(&"x".repeat(MAX_DESCRIPTION + 1)),
            authority_organization: "123".into(),
            resource_type: "Nonsense".into(),
            access_list_mode: "Sometimes".into(),
            ..ResourceInput::default()
        }) else {
            panic!("expected validation errors");
        };
        for field in [
            "identifier",
            "title",
            "description.nb",
            "hasCompetentAuthority.organization",
            "resourceType",
            "accessListMode",
        ] {
            assert!(errors.contains_key(field), "{field}: {errors:?}");
        }
    }

    #[test]
    fn refuses_an_authority_naming_someone_else() {
        for (organization, orgcode) in [("", "skd"), ("974760673", ""), ("974760673", "digdir")] {
            let draft = ResourceDraft::parse(ResourceInput {
                authority_organization: organization.into(),
                authority_orgcode: orgcode.into(),
                ..input()
            })
            .unwrap();
            assert!(matches!(
                draft.owned_by(&owner()),
                Err(AccessError::Forbidden(_))
            ));
        }
        let named = ResourceDraft::parse(ResourceInput {
            authority_organization: "0192:991825827".into(),
            authority_orgcode: "digdir".into(),
            ..input()
        })
        .unwrap();
        assert!(named.owned_by(&owner()).is_ok());
    }
}
