"""What schemathesis needs to know of Broker's document beyond JSON Schema (tests/e2e/schemathesis.rs).

The document names formats for values whose validity no pattern can state (its `info.x-formats`
says what each means); here each gets a generator of valid values, so a "positive" request is
one the server must accept. Two answers are not refusals of valid data, and are dropped as
such: Altinn's "resource not configured" (its not-found for a resource's broker settings), and
a token endpoint's `invalid_grant` (a well-formed grant whose signature or client is not known;
schemathesis itself exempts token endpoints it recognises).
"""

import base64
import json
import time
import uuid

import schemathesis
from hypothesis import strategies as st
from schemathesis.openapi.checks import RejectedPositiveData

# The organisation number's mod-11 weights (Enhetsregisteret).
WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
URN = "urn:altinn:organization:identifier-no:"


def with_check_digit(body: int) -> str | None:
    """The organisation number of eight leading digits, or None when no check digit fits."""
    digits = f"{body:08d}"
    check = 11 - sum(w * int(d) for w, d in zip(WEIGHTS, digits, strict=True)) % 11
    if check == 10:
        return None
    return digits + str(0 if check == 11 else check)


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def entity_tag(version: int) -> str:
    return 'W/"%s"' % base64url(json.dumps({"version": str(version)}, separators=(",", ":")).encode())


organisation_numbers = st.integers(0, 10**8 - 1).map(with_check_digit).filter(lambda n: n is not None)
keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)

schemathesis.openapi.format("organisation-number", organisation_numbers)
schemathesis.openapi.format(
    "organisation-identifier",
    st.one_of(
        st.builds(lambda icd, n: f"{icd:04d}:{n}", st.integers(0, 9999), organisation_numbers),
        organisation_numbers.map(lambda n: URN + n),
    ),
)
organisation_urns = organisation_numbers.map(lambda n: URN + n)
schemathesis.openapi.format("organisation-urn", organisation_urns)
schemathesis.openapi.format("policy-subject", st.one_of(st.just("any-organization"), organisation_urns))


def unsigned_grant(client: str, scope: str, signature: bytes) -> str:
    """A well-formed grant whose signature no key made: the server must read it, then refuse it."""
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "schemathesis"}
    claims = {"iss": client, "aud": "broker", "scope": scope, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    parts = (json.dumps(header).encode(), json.dumps(claims).encode(), signature)
    return ".".join(base64url(part) for part in parts)


schemathesis.openapi.format(
    "jwt-bearer-grant",
    st.builds(
        unsigned_grant,
        st.from_regex(r"\A[A-Za-z0-9._:-]{1,40}\Z"),
        st.sampled_from(["altinn:broker.write", "altinn:broker.read", "altinn:broker.write altinn:broker.read"]),
        st.binary(min_size=256, max_size=256),
    ),
)
schemathesis.openapi.format(
    "entity-tags",
    st.one_of(
        st.just("*"),
        st.lists(st.integers(0, 2**53).map(entity_tag), min_size=1, max_size=3).map(", ".join),
    ),
)
schemathesis.openapi.format("continuation-token", keys.map(lambda key: base64url(json.dumps(key).encode())))
schemathesis.openapi.format(
    "list-continuation-token",
    st.builds(
        lambda version, key: base64url(json.dumps({"Version": version, "ContinueFrom": key}).encode()),
        st.integers(0, 2**53),
        keys,
    ),
)
# Any big-endian number of 2048 to 8192 significant bits is a modulus as far as a JWK goes.
schemathesis.openapi.format(
    "rsa-modulus",
    st.builds(lambda top, rest: base64url(bytes([top]) + rest), st.integers(1, 255), st.binary(min_size=256, max_size=1023)),
)


# The Broker API's operations that answer a resource no broker settings exist for with Altinn's
# 400 "The resource has not been configured" (BRO-00025) instead of a 404.
NOT_FOUND_AS_400 = ("/broker/api/v1/resource/{resourceId}", "/broker/api/v1/statistics/monthly")


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    if not isinstance(failure, RejectedPositiveData):
        return True
    path = case.operation.path
    try:
        body = response.json()
    except ValueError:
        return True
    if path in NOT_FOUND_AS_400 and body.get("code") == "BRO-00025":
        return False
    if path == "/token" and unreadable_or_unknown_grant(body):
        return False
    if isinstance(body, dict) and any(rule(path, body) for rule in RULES_NO_DOCUMENT_CAN_STATE):
        return False
    return True


def unreadable_or_unknown_grant(body) -> bool:
    """A well-formed request whose grant the server cannot read or does not know (RFC 6749 §5.2)."""
    return body.get("error") == "invalid_grant" or (
        body.get("error") == "invalid_request" and body.get("error_description", "").startswith("assertion ")
    )


def messages(body) -> list[str]:
    errors = body.get("errors")
    return [message for texts in errors.values() for message in texts] if isinstance(errors, dict) else []


# Refusals by rules OpenAPI has no words for: between two query parameters (Altinn's code 6005),
# between a query parameter and a header (Altinn Events' subject), between the body and the
# path, between an app resource's identifier, references and its owner's org code (Altinn's
# resource rules), and ASP.NET's integers, which take no fraction part even where it is zero
# (JSON Schema's `integer` allows `1.0`).
APP_RESOURCE_RULES = ("Invalid identifier for app resource", "Invalid resource references for app resource", "Invalid prefix", "Invalid Prefix")
RULES_NO_DOCUMENT_CAN_STATE = (
    lambda path, body: path == "/broker/api/v1/statistics/monthly" and body.get("code") == "BRO-06005",
    lambda path, body: path == "/events/api/v1/events"
    and body.get("detail") == "Only one of 'subject' or 'alternativeSubject' can be defined.",
    lambda path, body: path.startswith("/resourceregistry/api/v1/resource")
    and bool(messages(body))
    and all(message.startswith(APP_RESOURCE_RULES) for message in messages(body)),
    lambda path, body: path == "/resourceregistry/api/v1/resource/{id}/policy"
    and any(message.startswith("must be the identifier in the path") for message in messages(body)),
    lambda path, body: any(
        message.startswith("The JSON value could not be converted to System.Int") for message in messages(body)
    ),
)
