//! Service owners and resources: Altinn's `ServiceResource` with the rules its Resource
//! Registry applies (`ServiceResourceHelper.ValidateResource`, the `[Required]` members of a
//! replacement), who owns one, and which resources count as active.
//!
//! Broker interprets the fields its rules and decisions need; every other field Altinn's model
//! has is kept as the client sent it and answered back ([`Resource::other`]).

use std::collections::BTreeMap;

use broker_common::identity::OrgNumber;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{AccessError, FieldErrors, check_len, required};
use super::ids::{OrgCode, ResourceId};

/// Longest service-owner name.
pub const MAX_TEXT: usize = 255;

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

/// Text by language code (`nb`, `nn`, `en`, or any other), as Altinn's dictionaries hold it.
pub type Texts = BTreeMap<String, String>;

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
        /// Unspecified: refused by the registry's rules.
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
        /// The policy alone decides.
        Disabled,
        /// Only members of a connected list may act.
        Enabled,
    }
);

named_enum!(
    /// Where a resource reference points.
    ReferenceSource {
        /// Unspecified.
        Default,
        /// Altinn 1.
        Altinn1,
        /// Altinn 2.
        Altinn2,
        /// Altinn 3.
        Altinn3,
        /// Another platform.
        ExternalPlatform,
    }
);

named_enum!(
    /// What a resource reference is.
    ReferenceType {
        /// Unspecified.
        Default,
        /// A URI.
        Uri,
        /// A delegation scheme.
        DelegationSchemeId,
        /// A Maskinporten scope.
        MaskinportenScope,
        /// An Altinn 2 service code.
        ServiceCode,
        /// An Altinn 2 service edition code.
        ServiceEditionCode,
        /// An Altinn 3 app (`<org>/<app>`).
        ApplicationId,
        /// An Altinn 2 service edition version.
        ServiceEditionVersion,
    }
);

/// A reference from a resource to something it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceReference {
    /// Where it points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_source: Option<ReferenceSource>,
    /// The reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_type: Option<ReferenceType>,
}

/// The organisation responsible for a resource: its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompetentAuthority {
    /// Organisation number.
    pub organization: OrgNumber,
    /// Org code: the service owner's.
    pub orgcode: OrgCode,
    /// Name, as the client gave it (`{}` when it gave none, as Altinn's default).
    #[serde(default)]
    pub name: Texts,
}

/// A resource of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Unique identifier.
    pub identifier: ResourceId,
    /// The owner's own version text (`"1.0"`), not the registry's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Title, in at least `en`, `nb` and `nn`.
    pub title: Texts,
    /// Description, in at least `en`, `nb` and `nn`.
    pub description: Texts,
    /// What a delegated right allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right_description: Option<Texts>,
    /// Lifecycle status, free text as in Altinn (`Completed`, `Deprecated`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Whether rights to it may be delegated.
    pub delegable: bool,
    /// Whether it is listed in public catalogues.
    pub visible: bool,
    /// Its owner.
    pub has_competent_authority: CompetentAuthority,
    /// What it stands for elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_references: Option<Vec<ResourceReference>>,
    /// Its kind.
    pub resource_type: ResourceType,
    /// Whether access lists apply.
    pub access_list_mode: AccessListMode,
    /// Every other member of Altinn's `ServiceResource` (`contactPoints`, `keywords`,
    /// `homepage`, …), kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Statuses that take a resource out of service.
const INACTIVE_STATUSES: [&str; 2] = ["Withdrawn", "Deprecated"];

/// Whether a resource with this status may be decided on.
pub fn is_active(status: Option<&str>) -> bool {
    !status.is_some_and(|status| {
        INACTIVE_STATUSES
            .iter()
            .any(|inactive| inactive.eq_ignore_ascii_case(status))
    })
}

impl Resource {
    /// Whether decisions may permit on it.
    pub fn is_active(&self) -> bool {
        is_active(self.status.as_deref())
    }
}

/// The competent authority as a request writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuthorityInput {
    /// Organisation number, as text.
    #[serde(default)]
    pub organization: Option<String>,
    /// Org code.
    #[serde(default)]
    pub orgcode: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<Texts>,
}

/// A resource as a request writes it (the gateway's canonical JSON), before validation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInput {
    /// Identifier.
    #[serde(default)]
    pub identifier: Option<String>,
    /// The owner's version text.
    #[serde(default)]
    pub version: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<Texts>,
    /// Description.
    #[serde(default)]
    pub description: Option<Texts>,
    /// Right description.
    #[serde(default)]
    pub right_description: Option<Texts>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// Delegable; true when absent, as in Altinn.
    #[serde(default = "yes")]
    pub delegable: bool,
    /// Visible; true when absent, as in Altinn.
    #[serde(default = "yes")]
    pub visible: bool,
    /// The owner.
    #[serde(default)]
    pub has_competent_authority: Option<AuthorityInput>,
    /// References.
    #[serde(default)]
    pub resource_references: Option<Vec<ResourceReference>>,
    /// Kind; absent means `Default`.
    #[serde(default)]
    pub resource_type: Option<ResourceType>,
    /// Access-list mode; absent means `Disabled`.
    #[serde(default)]
    pub access_list_mode: Option<AccessListMode>,
    /// Every other member.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn yes() -> bool {
    true
}

impl ResourceInput {
    /// Reads the canonical JSON document of a resource.
    pub fn from_document(document: &str) -> Result<Self, AccessError> {
        serde_json::from_str(document).map_err(|error| AccessError::invalid("document", error))
    }
}

/// Whether a resource is being created (its identifier must follow Altinn's pattern) or
/// replaced (its `[Required]` members must be present).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `POST`.
    Create,
    /// `PUT`.
    Replace,
}

/// The registry's prefix for Altinn 2 services.
const SERVICE_ENGINE_PREFIX: &str = "se_";
/// The registry's prefix for Altinn 3 apps.
const APP_PREFIX: &str = "app_";

/// A valid resource whose owner is yet to be checked.
#[derive(Debug, Clone)]
pub struct ResourceDraft {
    identifier: ResourceId,
    input: ResourceInput,
}

impl ResourceDraft {
    /// Applies Altinn's rules, reporting every failure at once under its C# member name with
    /// Altinn's words; a replacement first needs its `[Required]` members.
    pub fn parse(input: ResourceInput, write: Write) -> Result<Self, AccessError> {
        if write == Write::Replace {
            required_members(&input)?;
        }
        let identifier = match input.identifier.as_deref().map(ResourceId::parse) {
            Some(Ok(identifier)) => identifier,
            // Altinn's validator dereferences a missing identifier; this is its `[Required]`.
            None | Some(Err(_)) => return Err(AccessError::required("Identifier")),
        };
        let mut errors = FieldErrors::default();
        validate(&input, &identifier, write, &mut errors);
        errors.finish(|| Some(Self { identifier, input }))
    }

    /// The identifier.
    pub fn identifier(&self) -> &ResourceId {
        &self.identifier
    }

    /// `hasCompetentAuthority.organization`, as sent.
    pub fn organization(&self) -> Option<&str> {
        self.input
            .has_competent_authority
            .as_ref()
            .and_then(|authority| authority.organization.as_deref())
    }

    /// The resource, owned by `owner`, who must be the competent authority it names (Altinn's
    /// `HasWriteAccess`: the organisation number is the caller's); an absent org code is
    /// filled in from the owner, one that names another is refused.
    pub fn owned_by(self, owner: &ServiceOwner) -> Result<Resource, AccessError> {
        let mut input = self.input;
        // The registry numbers its versions itself (`versionId` in answers).
        input.other.remove("versionId");
        let authority = input.has_competent_authority.unwrap_or_default();
        let names_owner = match authority.organization.as_deref() {
            Some(organization) => organization
                .trim()
                .eq_ignore_ascii_case(&owner.org_number.to_string()),
            // Only an org code exempt from the number (`ttd`) gets here: it must be the owner's.
            None => authority
                .orgcode
                .as_deref()
                .is_some_and(|code| code.eq_ignore_ascii_case(owner.org_code.as_str())),
        };
        let code_is_owners = authority
            .orgcode
            .as_deref()
            .is_none_or(|code| code.eq_ignore_ascii_case(owner.org_code.as_str()));
        if !names_owner || !code_is_owners {
            return Err(AccessError::Forbidden(format!(
                "hasCompetentAuthority must name the caller's organisation ({}, {})",
                owner.org_code, owner.org_number
            )));
        }
        Ok(Resource {
            identifier: self.identifier,
            version: input.version,
            title: input.title.unwrap_or_default(),
            description: input.description.unwrap_or_default(),
            right_description: input.right_description,
            status: input.status,
            delegable: input.delegable,
            visible: input.visible,
            has_competent_authority: CompetentAuthority {
                organization: owner.org_number,
                orgcode: owner.org_code.clone(),
                name: authority.name.unwrap_or_default(),
            },
            resource_references: input.resource_references,
            resource_type: input.resource_type.unwrap_or(ResourceType::Default),
            access_list_mode: input.access_list_mode.unwrap_or(AccessListMode::Disabled),
            other: input.other,
        })
    }
}

/// The members `ServiceResource` marks `[Required]`, which ASP.NET checks on a replacement.
fn required_members(input: &ResourceInput) -> Result<(), AccessError> {
    let blank = |text: &Option<String>| text.as_deref().is_none_or(|text| text.trim().is_empty());
    let missing = [
        ("Identifier", blank(&input.identifier)),
        ("Title", input.title.is_none()),
        ("Description", input.description.is_none()),
        (
            "ContactPoints",
            input.other.get("contactPoints").is_none_or(Value::is_null),
        ),
        (
            "HasCompetentAuthority",
            input.has_competent_authority.is_none(),
        ),
    ];
    let mut errors = FieldErrors::default();
    for (member, absent) in missing {
        if absent {
            errors.add(member, required(member));
        }
    }
    errors.finish(|| Some(()))
}

/// `ServiceResourceHelper.ValidateResource`, rule by rule and in its order.
fn validate(
    input: &ResourceInput,
    identifier: &ResourceId,
    write: Write,
    errors: &mut FieldErrors,
) {
    let id = identifier.as_str();
    let kind = input.resource_type.unwrap_or(ResourceType::Default);
    let is_app = matches!(kind, ResourceType::AltinnApp | ResourceType::MigratedApp);
    let references = input.resource_references.as_deref().unwrap_or_default();
    let has_reference = |kind: ReferenceType| {
        references
            .iter()
            .any(|reference| reference.reference_type == Some(kind))
    };
    let authority = input.has_competent_authority.as_ref();
    let orgcode = authority
        .and_then(|authority| authority.orgcode.as_deref())
        .unwrap_or_default();

    if id.starts_with(SERVICE_ENGINE_PREFIX)
        && !(has_reference(ReferenceType::ServiceCode)
            && has_reference(ReferenceType::ServiceEditionCode))
    {
        errors.add(
            "Identifier",
            "Invalid prefix. Only to be used for Altinn 2 services",
        );
    }
    if id.starts_with(APP_PREFIX) && !is_app {
        errors.add(
            "Identifier",
            "Invalid Prefix. app_ is only for Altinn Studio apps",
        );
    }
    if kind == ResourceType::Default {
        errors.add("ResourceType", "ResourceType needs to be set");
    }
    let owner_named = authority.is_some_and(|authority| {
        orgcode.eq_ignore_ascii_case("ttd")
            || authority
                .organization
                .as_deref()
                .is_some_and(|organization| !organization.trim().is_empty())
    });
    if !owner_named {
        errors.add(
            "HasCompetentAuthority.Organization",
            "HasCompetentAuthority needs to be set with valid organization number",
        );
    }
    let app_prefix = format!("{APP_PREFIX}{orgcode}");
    if is_app && !starts_with_ignore_case(id, &app_prefix) {
        errors.add(
            "Identifier",
            "Invalid identifier for app resource. App resources needs to have an identifier \
             starting with app_<org>",
        );
    }
    let app_name = id.replace(&format!("{app_prefix}_"), "");
    let app_reference = format!("{orgcode}/{app_name}");
    let references_app = references.iter().any(|reference| {
        reference.reference_type == Some(ReferenceType::ApplicationId)
            && reference.reference_source == Some(ReferenceSource::Altinn3)
            && reference
                .reference
                .as_deref()
                .is_some_and(|text| text.eq_ignore_ascii_case(&app_reference))
    });
    if is_app && !references_app {
        errors.add(
            "ResourceReferences",
            "Invalid resource references for app resource. App resources needs to have a \
             reference with ReferenceType=ApplicationId, ReferenceSource=Altinn3 and \
             Reference=<org>/<appname>",
        );
    }
    if write == Write::Create && !identifier.is_valid_new() && !is_migrated_altinn1_app(id) {
        errors.add(
            "Identifier",
            "Invalid id. Only a-z and 0-9 is allowed together with _ and -.  Minimum 4 characters",
        );
    }
    let languages = [("english", "en"), ("bokmal", "nb"), ("nynorsk", "nn")];
    for (name, code) in languages {
        if !has_language(input.title.as_ref(), code) {
            errors.add("Title", format!("Missing title in {name} {code}"));
        }
    }
    for (name, code) in languages {
        if input.delegable && !has_language(input.right_description.as_ref(), code) {
            errors.add(
                "RightDescription",
                format!("Missing RightDescription in {name} {code}"),
            );
        }
    }
    for (name, code) in languages {
        if !has_language(input.description.as_ref(), code) {
            errors.add(
                "Description",
                format!("Missing Description in {name} {code}"),
            );
        }
    }
    if kind == ResourceType::MaskinportenSchema && !has_reference(ReferenceType::MaskinportenScope)
    {
        errors.add(
            "ResourceReferences",
            "Missing maskinporten scopen for MaskinportenSchema resource",
        );
    }
}

/// Whether `texts` has a non-blank text in `language`.
fn has_language(texts: Option<&Texts>, language: &str) -> bool {
    texts
        .and_then(|texts| texts.get(language))
        .is_some_and(|text| !text.trim().is_empty())
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Altinn's `^app_[a-z0-9]+_a1-.+:[a-z0-9.]+$` (case-insensitive): an Altinn 1 app migrated
/// with its old identifier, exempt from the identifier pattern.
fn is_migrated_altinn1_app(id: &str) -> bool {
    let lower = id.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix(APP_PREFIX) else {
        return false;
    };
    let Some((org, rest)) = rest.split_once("_a1-") else {
        return false;
    };
    let Some((name, version)) = rest.rsplit_once(':') else {
        return false;
    };
    !org.is_empty()
        && org
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !name.is_empty()
        && !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn owner() -> ServiceOwner {
        ServiceOwner::parse("991825827", "digdir", "Digitaliseringsdirektoratet").unwrap()
    }

    fn texts() -> Value {
        json!({"en": "Broker", "nb": "Formidling", "nn": "Formidling"})
    }

    /// A resource every rule accepts.
    fn valid() -> Value {
        json!({
            "identifier": "broker-resource",
            "title": texts(),
            "description": texts(),
            "rightDescription": texts(),
            "hasCompetentAuthority": {"organization": "991825827", "orgcode": "digdir"},
            "resourceType": "BrokerService",
            "contactPoints": [],
        })
    }

    fn input(document: Value) -> ResourceInput {
        ResourceInput::from_document(&document.to_string()).unwrap()
    }

    fn errors(document: Value, write: Write) -> BTreeMap<String, Vec<String>> {
        match ResourceDraft::parse(input(document), write) {
            Err(AccessError::Invalid(errors)) => errors,
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_in_and_other_members_are_kept() {
        let mut document = valid();
        document["keywords"] = json!([{"word": "post", "language": "nb"}]);
        document["hasCompetentAuthority"] = json!({"organization": "991825827"});
        let resource = ResourceDraft::parse(input(document), Write::Create)
            .unwrap()
            .owned_by(&owner())
            .unwrap();
        assert_eq!(resource.access_list_mode, AccessListMode::Disabled);
        assert_eq!(resource.status, None);
        assert!(resource.is_active() && resource.delegable && resource.visible);
        assert_eq!(resource.has_competent_authority.orgcode.as_str(), "digdir");
        assert!(resource.has_competent_authority.name.is_empty());
        assert_eq!(resource.other["keywords"][0]["word"], "post");
        let stored = serde_json::to_value(&resource).unwrap();
        assert_eq!(stored["keywords"][0]["language"], "nb", "{stored}");
        assert!(stored.get("status").is_none(), "null members are left out");
    }

    /// Mirrors `ServiceResourceHelper.ValidateResource`'s messages, keys and order.
    #[test]
    fn reports_every_rule_with_altinns_words() {
        let errors = errors(
            json!({"identifier": "Ab", "title": {"nb": "x"}, "resourceType": "Default"}),
            Write::Create,
        );
        assert_eq!(errors["ResourceType"], ["ResourceType needs to be set"]);
        assert_eq!(
            errors["HasCompetentAuthority.Organization"],
            ["HasCompetentAuthority needs to be set with valid organization number"]
        );
        assert_eq!(
            errors["Identifier"],
            [
                "Invalid id. Only a-z and 0-9 is allowed together with _ and -.  Minimum 4 characters"
            ]
        );
        assert_eq!(
            errors["Title"],
            ["Missing title in english en", "Missing title in nynorsk nn"]
        );
        assert_eq!(errors["RightDescription"].len(), 3, "delegable by default");
        assert_eq!(errors["Description"][1], "Missing Description in bokmal nb");
    }

    #[test]
    fn a_resource_that_is_not_delegable_needs_no_right_description() {
        let mut document = valid();
        document["delegable"] = json!(false);
        document["rightDescription"] = Value::Null;
        assert!(ResourceDraft::parse(input(document), Write::Create).is_ok());
    }

    #[test]
    fn prefixes_and_maskinporten_schemas_need_their_references() {
        let mut document = valid();
        document["identifier"] = json!("se_1234");
        assert!(errors(document, Write::Create)["Identifier"][0].starts_with("Invalid prefix."));
        let mut document = valid();
        document["identifier"] = json!("app_digdir_demo");
        assert!(errors(document, Write::Create)["Identifier"][0].starts_with("Invalid Prefix."));
        let mut document = valid();
        document["resourceType"] = json!("MaskinportenSchema");
        assert_eq!(
            errors(document.clone(), Write::Create)["ResourceReferences"],
            ["Missing maskinporten scopen for MaskinportenSchema resource"]
        );
        document["resourceReferences"] =
            json!([{"referenceType": "MaskinportenScope", "reference": "digdir:demo"}]);
        assert!(ResourceDraft::parse(input(document), Write::Create).is_ok());
        let mut document = valid();
        document["identifier"] = json!("app_digdir_demo");
        document["resourceType"] = json!("AltinnApp");
        document["resourceReferences"] = json!([
            {"referenceType": "ApplicationId", "referenceSource": "Altinn3", "reference": "digdir/demo"}
        ]);
        assert!(ResourceDraft::parse(input(document), Write::Create).is_ok());
        assert!(is_migrated_altinn1_app("app_digdir_a1-1234:5.1"));
        assert!(!is_migrated_altinn1_app("app_digdir_demo"));
    }

    /// Mirrors the `[Required]` members of `ServiceResource` that a `PUT` enforces.
    #[test]
    fn a_replacement_needs_altinns_required_members() {
        let mut document = valid();
        document["contactPoints"] = Value::Null;
        document["title"] = Value::Null;
        assert_eq!(
            errors(document, Write::Replace),
            BTreeMap::from([
                (
                    "ContactPoints".to_owned(),
                    vec!["The ContactPoints field is required.".to_owned()]
                ),
                (
                    "Title".to_owned(),
                    vec!["The Title field is required.".to_owned()]
                ),
            ])
        );
        // Only a new identifier follows the pattern.
        let mut document = valid();
        document["identifier"] = json!("Old");
        assert!(ResourceDraft::parse(input(document), Write::Replace).is_ok());
    }

    /// Mirrors `AuthorizationUtil.HasWriteAccess`: the organisation number must be the caller's.
    #[test]
    fn refuses_an_authority_naming_someone_else() {
        for authority in [
            json!({"organization": "974760673", "orgcode": "digdir"}),
            json!({"organization": "991825827", "orgcode": "skd"}),
            json!({"organization": "0192:991825827"}),
            json!({"orgcode": "ttd"}),
        ] {
            let mut document = valid();
            document["hasCompetentAuthority"] = authority.clone();
            let draft = ResourceDraft::parse(input(document), Write::Create).unwrap();
            assert!(
                matches!(draft.owned_by(&owner()), Err(AccessError::Forbidden(_))),
                "{authority}"
            );
        }
        let mut document = valid();
        document["hasCompetentAuthority"] =
            json!({"organization": "991825827", "orgcode": "DIGDIR"});
        let draft = ResourceDraft::parse(input(document), Write::Create).unwrap();
        assert!(draft.owned_by(&owner()).is_ok());
    }

    #[test]
    fn stored_resources_of_earlier_releases_still_read() {
        let old = json!({
            "identifier": "ab", "title": {"nb": "T", "nn": "", "en": ""},
            "description": {"nb": "", "nn": "", "en": ""},
            "hasCompetentAuthority": {"organization": "991825827", "orgcode": "digdir",
                "name": {"nb": "D", "nn": "D", "en": "D"}},
            "resourceType": "BrokerService", "accessListMode": "Enabled", "status": "Active",
            "delegable": true, "visible": true,
        });
        let resource: Resource = serde_json::from_value(old).unwrap();
        assert_eq!(resource.access_list_mode, AccessListMode::Enabled);
        assert!(resource.other.is_empty());
    }
}
