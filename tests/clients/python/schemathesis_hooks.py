"""What schemathesis needs to know of Broker's document beyond JSON Schema (tests/e2e/schemathesis.rs).

The document names formats for values whose validity no pattern can state (its `info.x-formats`
says what each means); here each gets a generator of valid values, so a "positive" request is
one the server must accept. A few answers are not refusals of valid data, and `NOT_REFUSALS`
drops them by name, each with its reason (schemathesis counts them in its summary): Altinn's
"resource not configured" (its not-found), a well-formed grant nobody signed (schemathesis
itself exempts the token endpoints it recognises), and rules between two parameters or a
parameter and the body, which OpenAPI has no words for.
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
    version_json = json.dumps({"version": str(version)}, separators=(",", ":"))
    return f'W/"{base64url(version_json.encode())}"'


organisation_numbers = st.integers(0, 10**8 - 1).map(with_check_digit).filter(lambda n: n is not None)
keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)

organisation_urns = organisation_numbers.map(lambda n: URN + n)
schemathesis.openapi.format("organisation-number", organisation_numbers)
schemathesis.openapi.format("organisation-urn", organisation_urns)
schemathesis.openapi.format(
    "organisation-identifier",
    st.one_of(
        st.builds(lambda icd, n: f"{icd:04d}:{n}", st.integers(0, 9999), organisation_numbers), organisation_urns
    ),
)
schemathesis.openapi.format("policy-subject", st.one_of(st.just("any-organization"), organisation_urns))

# A tus PATCH's body (and a creation's first bytes) is raw bytes, as octet-stream is.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


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
    st.builds(
        lambda top, rest: base64url(bytes([top]) + rest), st.integers(1, 255), st.binary(min_size=256, max_size=1023)
    ),
)


# The Broker API's operations that answer a resource no broker settings exist for with Altinn's
# 400 "The resource has not been configured" (BRO-00025) instead of a 404.
NOT_FOUND_AS_400 = ("/broker/api/v1/resource/{resourceId}", "/broker/api/v1/statistics/monthly")
# Altinn's rules between an app resource's identifier, references and its owner's org code.
APP_RESOURCE_RULES = (
    "Invalid identifier for app resource",
    "Invalid resource references for app resource",
    "Invalid prefix",
    "Invalid Prefix",
)


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keeps every failure except a refusal that is no refusal of valid data (see the top)."""
    if not isinstance(failure, RejectedPositiveData):
        return True
    try:
        answer = response.json()
    except ValueError:
        return True
    path = case.operation.path
    return not (isinstance(answer, dict) and any(rule(path, answer, case) for rule in NOT_REFUSALS))


def messages(answer) -> list[str]:
    """The messages of a validation problem's `errors`."""
    errors = answer.get("errors")
    return [message for texts in errors.values() for message in texts] if isinstance(errors, dict) else []


def leaves(value):
    """Every scalar in a JSON value."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


# Each: (operation path, problem or OAuth2 error answered, case sent) -> whether it is one.
NOT_REFUSALS = (
    # Altinn's not-found for a resource without broker settings.
    lambda path, answer, case: path in NOT_FOUND_AS_400 and answer.get("code") == "BRO-00025",
    # A well-formed token request whose grant is unknown or unreadable (RFC 6749 §5.2).
    lambda path, answer, case: (
        path == "/token"
        and (
            answer.get("error") == "invalid_grant"
            or (
                answer.get("error") == "invalid_request"
                and answer.get("error_description", "").startswith("assertion ")
            )
        )
    ),
    # A rule between two query parameters (Altinn's code 6005).
    lambda path, answer, case: path == "/broker/api/v1/statistics/monthly" and answer.get("code") == "BRO-06005",
    # A rule between a query parameter and a header (Altinn Events' subject).
    lambda path, answer, case: (
        path == "/events/api/v1/events"
        and answer.get("detail") == "Only one of 'subject' or 'alternativeSubject' can be defined."
    ),
    # Altinn's app-resource rules, alone.
    lambda path, answer, case: (
        path.startswith("/resourceregistry/api/v1/resource")
        and bool(messages(answer))
        and all(message.startswith(APP_RESOURCE_RULES) for message in messages(answer))
    ),
    # A rule between the body and the path.
    lambda path, answer, case: (
        path == "/resourceregistry/api/v1/resource/{id}/policy"
        and any(message.startswith("must be the identifier in the path") for message in messages(answer))
    ),
    # ASP.NET's integers take no fraction part even where it is zero; JSON Schema's allow `1.0`.
    lambda path, answer, case: (
        any(message.startswith("The JSON value could not be converted to System.Int") for message in messages(answer))
        and any(isinstance(value, float) and value.is_integer() for value in leaves(case.body))
    ),
)
