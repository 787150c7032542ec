//! The server's rules that the handlers' Rust types cannot carry into the document, stated as
//! JSON Schema keywords over the generated document: required form fields, enumerations,
//! patterns, rules between fields (`if`/`then`, which utoipa has no builder for), and the
//! formats of values whose validity no pattern can state (an organisation number's check
//! digit, an entity tag or page token the server wrote). Each format is named here and
//! described in [`FORMATS`], so a client (or a test generator) knows what a valid value is.

use serde_json::{Map, Value, json};

/// A JWT-bearer grant's `grant_type` (RFC 7523 §2.1).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A JWS in compact serialisation: three base64url parts.
const COMPACT_JWS: &str = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$";
/// A scope name, as the token service takes it.
const SCOPE: &str = r"^[A-Za-z0-9:._/-]{1,255}$";
/// A client id or key id, as the token service takes it.
const IDENTIFIER: &str = r"^[A-Za-z0-9._:-]{1,255}$";
/// A text that is not blank.
const NOT_BLANK: &str = r"\S";
/// The includes of an access list, comma-separated or repeated.
const INCLUDES: &str =
    r"^ *(resources|resource-actions|members)? *(, *(resources|resource-actions|members)? *)*$";
/// An RSA modulus of 256 to 1024 bytes, the first with its top bit set, in base64url without
/// padding (342 to 1366 characters; the unused bits of a last partial group are zero).
const RSA_MODULUS: &str = "^[g-z0-9_-][A-Za-z0-9_-]{3}([A-Za-z0-9_-]{4})*\
                           ([A-Za-z0-9_-]{2}[AEIMQUYcgkosw048]|[A-Za-z0-9_-][AQgw])?$";
/// An organisation's party URN; the number is an `organisation-number`.
const ORGANISATION_URN: &str = "^urn:altinn:organization:identifier-no:[0-9]{9}$";
/// A policy rule's subject: anyone, an organisation, or the members of an access list.
const POLICY_SUBJECT: &str = "^(any-organization|urn:altinn:organization:identifier-no:[0-9]{9}|\
                              urn:altinn:access-list:[a-z0-9]{2,10}:[^\\x00-\\x1f\\x7f]{1,255})$";
/// A policy rule's action.
const ACTION: &str = "^[a-z][a-z0-9_-]{0,49}$";
/// A resource, bare or as its URN, without another `:`; at most 100 characters here, so any
/// such text stays within the 255 UTF-16 units Altinn counts.
const RESOURCE_ID: &str = "^(urn:altinn:resource:)?[^:]{1,100}$";
/// A URN as Altinn Events takes a resource filter (RFC 8141's shape, lower case).
const EVENTS_URN: &str = "^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.;$_!/-]{1,100}){1,10}$";
/// A dead letter's id, or the page token of the dead letters (the last id seen).
const DEAD_LETTER_ID: &str = r"^[0-9]{1,18}$";

/// The formats the document names, with what makes a value valid.
pub const FORMATS: [(&str, &str); 9] = [
    (
        "organisation-number",
        "Nine digits whose last is the mod-11 check digit (weights 3 2 7 6 5 4 3 2)",
    ),
    (
        "organisation-identifier",
        "`<four-digit ICD>:<organisation-number>` or \
         `urn:altinn:organization:identifier-no:<organisation-number>`",
    ),
    (
        "organisation-urn",
        "`urn:altinn:organization:identifier-no:<organisation-number>`",
    ),
    (
        "policy-subject",
        "`any-organization`, an `organisation-urn`, or `urn:altinn:access-list:<owner>:<list>`",
    ),
    (
        "jwt-bearer-grant",
        "A JWT (RFC 7519) signed with a key of the client named by its `iss`, for this \
         server's token endpoint as `aud`, with `iat`, `exp`, `scope` and a fresh `jti`",
    ),
    (
        "entity-tags",
        "`*`, or weak entity tags the server sent (`W/\"<base64url of {\"version\":\"<n>\"}>\"`), \
         comma-separated",
    ),
    (
        "continuation-token",
        "A listing's page token from its previous page: base64url of the last key as a JSON string",
    ),
    (
        "list-continuation-token",
        "A list's page token from its previous page: base64url of \
         `{\"Version\":<n>,\"ContinueFrom\":\"<key>\"}`",
    ),
    (
        "rsa-modulus",
        "An RSA modulus of 2048 to 8192 bits, big-endian, base64url without padding",
    ),
];

/// States the rules in `doc`, the generated document as JSON.
pub fn apply(doc: &mut Value) {
    document_formats(doc);
    token_form(doc);
    client_registry(doc);
    dead_letters(doc);
    resource_registry(doc);
    policies(doc);
    broker_settings(doc);
    file_transfers(doc);
    events(doc);
    malware_scans(doc);
    tus_uploads(doc);
}

fn document_formats(doc: &mut Value) {
    let formats: Map<String, Value> = FORMATS
        .iter()
        .map(|(name, meaning)| ((*name).to_owned(), json!(meaning)))
        .collect();
    merge(doc, "/info", json!({ "x-formats": formats }));
}

fn token_form(doc: &mut Value) {
    merge(
        doc,
        "/components/schemas/TokenForm",
        json!({
            "required": ["grant_type", "assertion"],
            "properties": {
                "grant_type": { "enum": [JWT_BEARER] },
                "assertion": { "pattern": COMPACT_JWS, "format": "jwt-bearer-grant" },
            },
        }),
    );
}

fn client_registry(doc: &mut Value) {
    merge(
        doc,
        "/components/schemas/RsaJwk",
        json!({
            "type": "object",
            "description": "A public RSA signing key as a JWK (RFC 7517), with its `kid`.",
            "required": ["kty", "kid", "n", "e"],
            "properties": {
                "kty": { "type": "string", "enum": ["RSA"] },
                "kid": { "type": "string", "pattern": IDENTIFIER,
                    "description": "Unique among the client's keys." },
                "n": { "type": "string", "format": "rsa-modulus", "pattern": RSA_MODULUS,
                    "minLength": 342, "maxLength": 1366 },
                "e": { "type": "string", "enum": ["AQAB", "Aw"],
                    "description": "The public exponent: 65537 or 3." },
                "alg": { "type": "string", "enum": ["RS256", "RS384", "RS512"] },
                "use": { "type": "string", "enum": ["sig"] },
            },
        }),
    );
    merge(
        doc,
        "/components/schemas/JwkSet/properties/keys",
        json!({
            "minItems": 1,
            "maxItems": 10,
            "items": { "$ref": "#/components/schemas/RsaJwk" },
            "description": "Public keys, 1 to 10, with distinct `kid`s.",
        }),
    );
    merge(
        doc,
        "/components/schemas/NewClient/properties",
        json!({
            "orgNumber": { "format": "organisation-number" },
            "scopes": { "items": { "pattern": SCOPE } },
            "clientId": { "pattern": IDENTIFIER },
            "name": { "maxLength": 255 },
        }),
    );
    request_body(
        doc,
        "/admin/v1/clients/{clientId}/keys",
        json!({ "$ref": "#/components/schemas/RsaJwk" }),
    );
    parameter(
        doc,
        "/admin/v1/service-owners",
        "pageToken",
        json!({ "format": "continuation-token" }),
    );
}

fn policies(doc: &mut Value) {
    merge(
        doc,
        "/components/schemas/ResourcePolicy/properties/rules",
        json!({ "maxItems": 100 }),
    );
    merge(
        doc,
        "/components/schemas/PolicyRule/properties",
        json!({
            "subjects": { "minItems": 1, "maxItems": 100,
                "items": { "pattern": POLICY_SUBJECT, "format": "policy-subject" } },
            "actions": { "minItems": 1, "maxItems": 100, "items": { "pattern": ACTION } },
        }),
    );
    merge(
        doc,
        "/components/schemas/MemberParties",
        json!({
            "additionalProperties": false,
            "properties": { "data": { "maxItems": 100,
                "items": { "pattern": ORGANISATION_URN, "format": "organisation-urn" } } },
        }),
    );
}

fn dead_letters(doc: &mut Value) {
    merge(
        doc,
        "/components/schemas/RedriveBody/properties/ids",
        json!({ "items": { "pattern": DEAD_LETTER_ID } }),
    );
    parameter(
        doc,
        "/admin/v1/events/dead-letters",
        "pageToken",
        json!({ "pattern": DEAD_LETTER_ID }),
    );
}

fn resource_registry(doc: &mut Value) {
    let language = json!({ "type": "string", "pattern": NOT_BLANK });
    merge(
        doc,
        "/components/schemas/RequiredTexts",
        json!({
            "type": "object",
            "description": "Texts by language code, with a text that is not blank in `en`, `nb` \
                and `nn`.",
            "required": ["en", "nb", "nn"],
            "properties": { "en": language, "nb": language, "nn": language },
            "additionalProperties": { "type": ["string", "null"] },
        }),
    );
    let required_texts = json!({ "$ref": "#/components/schemas/RequiredTexts" });
    for property in ["title", "description"] {
        set(
            doc,
            &format!("/components/schemas/ServiceResource/properties/{property}"),
            required_texts.clone(),
        );
    }
    merge(
        doc,
        "/components/schemas/ServiceResource",
        json!({
            "required": ["identifier", "title", "description", "resourceType",
                "hasCompetentAuthority"],
            "properties": {
                "resourceType": { "not": { "const": "Default" } },
                "identifier": { "type": "string", "pattern": "^[a-z0-9_-]{4,255}$" },
                "hasCompetentAuthority": {
                    "type": "object",
                    "required": ["organization"],
                    "properties": { "organization": { "type": "string", "pattern": NOT_BLANK } },
                },
            },
            "allOf": [
                // A delegable resource (the default) describes the right it delegates.
                {
                    "if": {
                        "properties": { "delegable": { "const": false } },
                        "required": ["delegable"],
                    },
                    "else": {
                        "required": ["rightDescription"],
                        "properties": { "rightDescription": required_texts },
                    },
                },
                // A Maskinporten schema names its scope.
                {
                    "if": {
                        "properties": { "resourceType": { "const": "MaskinportenSchema" } },
                        "required": ["resourceType"],
                    },
                    "then": {
                        "required": ["resourceReferences"],
                        "properties": { "resourceReferences": {
                            "type": "array",
                            "contains": {
                                "type": "object",
                                "required": ["referenceType"],
                                "properties": {
                                    "referenceType": { "const": "MaskinportenScope" },
                                },
                            },
                        } },
                    },
                },
            ],
        }),
    );
    for path in [
        "/resourceregistry/api/v1/access-lists/{owner}",
        "/resourceregistry/api/v1/resource/resourcelist",
    ] {
        parameter(
            doc,
            path,
            "token",
            json!({ "format": "continuation-token" }),
        );
    }
    for path in [
        "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
        "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections",
    ] {
        parameter(
            doc,
            path,
            "token",
            json!({ "format": "list-continuation-token" }),
        );
    }
    for path in [
        "/resourceregistry/api/v1/access-lists/{owner}",
        "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    ] {
        parameter(
            doc,
            path,
            "include",
            json!({ "items": { "type": "string", "pattern": INCLUDES } }),
        );
    }
}

fn broker_settings(doc: &mut Value) {
    // Altinn's `ValidateUseManifestFileShim`: the shim needs both legacy codes.
    merge(
        doc,
        "/components/schemas/ResourceSettingsUpdate",
        json!({
            "if": {
                "properties": { "useManifestFileShim": { "const": true } },
                "required": ["useManifestFileShim"],
            },
            "then": {
                "required": ["externalServiceCodeLegacy", "externalServiceEditionCodeLegacy"],
                "properties": {
                    "externalServiceCodeLegacy": { "type": "string", "minLength": 1 },
                    "externalServiceEditionCodeLegacy": {
                        "type": "integer",
                        "not": { "const": 0 },
                    },
                },
            },
        }),
    );
    merge(
        doc,
        "/components/schemas/ResourceSettingsUpdate/properties/maxFileTransferSize",
        json!({ "minimum": 0 }),
    );
    parameter(
        doc,
        "/broker/api/v1/statistics/monthly",
        "Accept",
        json!({ "enum": ["text/csv", "application/json", "*/*"] }),
    );
}

fn file_transfers(doc: &mut Value) {
    let organisation = json!({ "format": "organisation-identifier" });
    merge(
        doc,
        "/components/schemas/FileTransferInitialize/properties",
        json!({
            "sender": organisation,
            "recipients": { "items": organisation },
            "resourceId": { "pattern": RESOURCE_ID },
        }),
    );
    merge(
        doc,
        "/components/schemas/ServiceOwner/properties",
        json!({
            "orgNumber": { "format": "organisation-number" },
            "orgCode": { "pattern": "^[a-z0-9]{2,10}$" },
        }),
    );
    // Any other part is read as a metadata field or refused, so the form has no others.
    merge(
        doc,
        "/paths/~1broker~1api~1v1~1filetransfer~1upload/post/requestBody/content/multipart~1form-data/schema",
        json!({ "additionalProperties": false }),
    );
}

fn events(doc: &mut Value) {
    for (name, rule) in [
        ("type", json!({ "items": { "pattern": NOT_BLANK } })),
        ("resource", json!({ "pattern": "^urn:altinn:resource:" })),
        ("after", json!({ "pattern": NOT_BLANK })),
    ] {
        parameter(doc, "/events/api/v1/events", name, rule);
    }
    merge(
        doc,
        "/components/schemas/NewSubscription",
        json!({
            "required": ["endPoint", "resourceFilter"],
            // A main unit's subscription takes its sub-units' events only for a subject.
            "if": {
                "properties": { "includeSubunits": { "const": true } },
                "required": ["includeSubunits"],
            },
            "then": {
                "required": ["subjectFilter"],
                "properties": { "subjectFilter": { "type": "string", "minLength": 1 } },
            },
            "properties": {
                "endPoint": { "type": "string" },
                "resourceFilter": { "type": "string", "pattern": EVENTS_URN },
                "alternativeSubjectFilter": { "maxLength": 0 },
            },
        }),
    );
    // Altinn takes a source filter only for app resources, and Broker has none.
    merge(
        doc,
        "/components/schemas/NewSubscription/properties/sourceFilter",
        json!({ "type": "null" }),
    );
}

fn malware_scans(doc: &mut Value) {
    merge(
        doc,
        "/components/schemas/EventGridEvent",
        json!({
            "type": "object",
            "description": "An Azure Event Grid event.",
            "required": ["eventType"],
            "properties": {
                "eventType": { "type": "string" },
                "data": { "type": "object" },
            },
        }),
    );
    let event = json!({ "$ref": "#/components/schemas/EventGridEvent" });
    set(
        doc,
        "/components/schemas/ScanPost",
        json!({
            "description": "What a scanner posts: Event Grid events (an array, or one), or one \
                verdict in Broker's flat form.",
            "oneOf": [
                { "type": "array", "items": event },
                event,
                {
                    "type": "object",
                    "description": "One verdict in Broker's flat form.",
                    "required": ["fileTransferId", "verdict"],
                    "properties": {
                        "fileTransferId": { "type": "string", "format": "uuid" },
                        "verdict": { "type": "string",
                            "enum": ["NoThreatsFound", "No threats found", "Clean",
                                "Malicious", "Infected"] },
                        "malwareName": { "type": ["string", "null"] },
                        "scanner": { "type": ["string", "null"] },
                    },
                    "not": { "required": ["eventType"] },
                },
            ],
        }),
    );
}

/// The tus headers' syntax (what the parsers accept, `tus/proptests.rs` holds them to it), and
/// the partial uploads' URL, which answers as the transfer's own but for creation.
fn tus_uploads(doc: &mut Value) {
    use super::filetransfer::tus::{
        BASE, CHECKSUM_PATTERN, NUMBER_PATTERN, VERSION, concat_pattern, metadata_pattern,
    };
    let upload = format!("{BASE}/{{fileTransferId}}");
    for (name, rule) in [
        ("Tus-Resumable", json!({ "enum": [VERSION] })),
        ("Upload-Length", json!({ "pattern": NUMBER_PATTERN })),
        ("Upload-Offset", json!({ "pattern": NUMBER_PATTERN })),
        ("Upload-Metadata", json!({ "pattern": metadata_pattern() })),
        ("Upload-Concat", json!({ "pattern": concat_pattern(UUID) })),
        ("Upload-Checksum", json!({ "pattern": CHECKSUM_PATTERN })),
    ] {
        parameter(doc, &upload, name, rule);
    }
    let mut partial = doc["paths"][&upload].clone();
    if let Some(item) = partial.as_object_mut() {
        item.remove("post");
        for operation in item.values_mut().filter(|operation| operation.is_object()) {
            if let Some(id) = operation["operationId"].as_str() {
                operation["operationId"] = json!(format!("{id}_partial"));
            }
            if let Some(parameters) = operation["parameters"].as_array_mut() {
                parameters.insert(
                    1,
                    json!({
                        "name": "partialId",
                        "in": "path",
                        "required": true,
                        "description": "The partial upload's id, from the `Location` of its \
                            creation (`Upload-Concat: partial`)",
                        "schema": { "type": "string", "pattern": "^[0-9a-fA-F]{32}$" },
                    }),
                );
            }
        }
    }
    doc["paths"][format!("{upload}/partial/{{partialId}}")] = partial;
}

/// A UUID in any case, as the path's transfer id is read.
const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/// Merges `patch`'s members into the object at `pointer`, recursively (objects merge, any
/// other value replaces); creates the object when absent.
fn merge(doc: &mut Value, pointer: &str, patch: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let Some(Value::Object(parent)) = doc.pointer_mut(parent) else {
        panic!("the document has no object at {parent}");
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    merge_into(parent.entry(key).or_insert_with(|| json!({})), patch);
}

fn merge_into(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge_into(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

/// Replaces the value at `pointer`, which must exist.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let Some(target) = doc.pointer_mut(pointer) else {
        panic!("the document has nothing at {pointer}");
    };
    *target = value;
}

/// Merges `patch` into the schema of the parameter `name` of every operation on `path`.
fn parameter(doc: &mut Value, path: &str, name: &str, patch: Value) {
    let mut found = false;
    for operation in operations(doc, path) {
        let parameters = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten();
        for parameter in parameters.filter(|parameter| parameter["name"] == name) {
            merge_into(&mut parameter["schema"], patch.clone());
            found = true;
        }
    }
    assert!(found, "no parameter {name} on {path}");
}

/// Replaces the schema of every operation's request body on `path`.
fn request_body(doc: &mut Value, path: &str, schema: Value) {
    for operation in operations(doc, path) {
        for content in operation
            .pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(Map::values_mut)
        {
            content["schema"] = schema.clone();
        }
    }
}

fn operations<'a>(doc: &'a mut Value, path: &str) -> impl Iterator<Item = &'a mut Value> {
    let item = doc["paths"][path].as_object_mut();
    assert!(item.is_some(), "the document has no path {path}");
    item.into_iter()
        .flat_map(Map::values_mut)
        .filter(|operation| operation.is_object())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::FORMATS;

    /// The formats JSON Schema and OpenAPI define, which need no word here.
    const STANDARD: [&str; 5] = ["int32", "int64", "binary", "date-time", "uuid"];

    fn formats_in(value: &serde_json::Value, found: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(object) => {
                if let Some(serde_json::Value::String(format)) = object.get("format") {
                    found.insert(format.clone());
                }
                object.values().for_each(|value| formats_in(value, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| formats_in(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_format_the_document_uses_is_standard_or_described_and_every_one_described_is_used() {
        let mut used = BTreeSet::new();
        formats_in(crate::routes::openapi::document(), &mut used);
        let described: BTreeSet<String> = FORMATS.iter().map(|(name, _)| (*name).into()).collect();
        let undescribed: Vec<_> = used
            .iter()
            .filter(|format| !described.contains(*format) && !STANDARD.contains(&format.as_str()))
            .collect();
        assert!(
            undescribed.is_empty(),
            "formats nobody describes: {undescribed:?}"
        );
        let unused: Vec<_> = described.difference(&used).collect();
        assert!(
            unused.is_empty(),
            "formats described but not used: {unused:?}"
        );
    }
}
