"""One file transfer, end to end, through a client generated from the broker's /openapi.json.

tests/e2e/generated_client.rs generates the package `broker_client` with openapi-python-client
and runs this script with it on PYTHONPATH. Every broker call goes through the generated typed
functions and models, so a document that says something other than what goes over the wire
shows up here as a model that does not parse, a status the document does not name
(`raise_on_unexpected_status`), or a value that differs.

Environment: BROKER_URL, the tokens BROKER_OWNER_TOKEN (platform token with
`altinn:serviceowner`), BROKER_SENDER_TOKEN (`altinn:broker.write`) and BROKER_RECIPIENT_TOKEN
(`altinn:broker.read`), the resource BROKER_RESOURCE, and the parties BROKER_SENDER and
BROKER_RECIPIENT (`0192:<orgnr>`).

Prints each step; exits 1 with a line starting `FAIL:` at the first mismatch.
"""

import datetime
import hashlib
import io
import os
import sys
import time
import uuid

from broker_client import AuthenticatedClient, errors
from broker_client.api.broker_settings import (
    get_resource_settings,
    put_resource_settings,
    register_service_owner,
)
from broker_client.api.filetransfer import (
    confirm_download,
    download,
    initialize,
    overview,
    search,
    upload,
)
from broker_client.models import (
    FileTransferIdBody,
    FileTransferInitialize,
    FileTransferInitializePropertyList,
    FileTransferOverview,
    FileTransferStatus,
    Problem,
    RecipientFileTransferStatus,
    ResourceSettingsOverview,
    ResourceSettingsUpdate,
    SearchRole,
    ServiceOwnerInitialize,
)
from broker_client.types import File

# How long the transfer may take to reach a status.
SETTLE_SECONDS = 60
# The resource's maxFileTransferSize the owner sets.
MAX_SIZE = 10 * 1024 * 1024
# The file sent: not all one byte, so a range or a corruption shows (the Rust test expects its size).
CONTENT = bytes((i * 31 ^ (i >> 8)) & 0xFF for i in range(100_000))


class Mismatch(Exception):
    """What the broker answered differs from what the flow expects."""


def expect(condition, message):
    if not condition:
        raise Mismatch(message)


def expect_status(response, status, what):
    expect(
        response.status_code == status,
        f"{what}: status {int(response.status_code)}, expected {status}: "
        f"{response.content[:500]!r}",
    )
    return response.parsed


def expect_problem(response, status, code, what):
    problem = expect_status(response, status, what)
    expect(isinstance(problem, Problem), f"{what}: no typed Problem but {problem!r}")
    expect(
        problem.status == status, f"{what}: the problem's status is {problem.status}"
    )
    expect(problem.code == code, f"{what}: code {problem.code!r}, expected {code}")
    return problem


def step(message):
    print(f"- {message}", flush=True)


def client(token):
    return AuthenticatedClient(
        base_url=os.environ["BROKER_URL"],
        token=token,
        raise_on_unexpected_status=True,
        timeout=30.0,
    )


def wait_for(sender, transfer_id, status):
    """Polls the typed overview until `status`; returns it."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        current = expect_status(
            overview.sync_detailed(transfer_id, client=sender), 200, "overview"
        )
        expect(
            isinstance(current, FileTransferOverview),
            f"overview: not a FileTransferOverview but {current!r}",
        )
        if current.file_transfer_status == status:
            return current
        expect(
            current.file_transfer_status
            not in (FileTransferStatus.FAILED, FileTransferStatus.CANCELLED),
            f"the transfer became {current.file_transfer_status.value} waiting for {status.value}",
        )
        expect(
            time.monotonic() < deadline,
            f"the transfer is still {current.file_transfer_status.value} after "
            f"{SETTLE_SECONDS} s, waiting for {status.value}",
        )
        time.sleep(0.05)


def set_up(owner, resource):
    registered = register_service_owner.sync_detailed(
        client=owner, body=ServiceOwnerInitialize(name="Digitaliseringsdirektoratet")
    )
    if registered.status_code == 409:
        expect_problem(
            registered, 409, "BRO-07002", "registering the service owner again"
        )
        step("service owner: already registered (409 BRO-07002)")
    else:
        expect_status(registered, 200, "registering the service owner")
        step("service owner: registered")

    settings = ResourceSettingsUpdate(
        max_file_transfer_size=MAX_SIZE,
        file_transfer_time_to_live="P30D",
        purge_file_transfer_after_all_recipients_confirmed=True,
        purge_file_transfer_grace_period="PT2H",
    )
    expect_status(
        put_resource_settings.sync_detailed(resource, client=owner, body=settings),
        204,
        "putting the resource's settings",
    )
    stored = expect_status(
        get_resource_settings.sync_detailed(resource, client=owner),
        200,
        "reading the resource's settings",
    )
    expect(isinstance(stored, ResourceSettingsOverview), f"settings: {stored!r}")
    expect(
        stored.max_file_transfer_size == MAX_SIZE,
        f"maxFileTransferSize is {stored.max_file_transfer_size}, expected {MAX_SIZE}",
    )
    step(f"resource {resource}: maxFileTransferSize {MAX_SIZE}, P30D")


def send(sender, resource):
    checksum = hashlib.md5(CONTENT).hexdigest()
    declared = FileTransferInitialize(
        resource_id=resource,
        file_name="generated-client.bin",
        senders_file_transfer_reference="generated-client",
        sender=os.environ["BROKER_SENDER"],
        recipients=[os.environ["BROKER_RECIPIENT"]],
        property_list=FileTransferInitializePropertyList.from_dict({"case": "42"}),
        checksum=checksum,
    )
    created = expect_status(
        initialize.sync_detailed(client=sender, body=declared), 200, "initialize"
    )
    expect(isinstance(created, FileTransferIdBody), f"initialize: {created!r}")
    transfer_id = created.file_transfer_id
    step(f"initialized {transfer_id}")

    body = File(
        payload=io.BytesIO(CONTENT),
        file_name="generated-client.bin",
        mime_type="application/octet-stream",
    )
    uploaded = expect_status(
        upload.sync_detailed(transfer_id, client=sender, body=body), 200, "upload"
    )
    expect(
        uploaded.file_transfer_id == transfer_id,
        f"upload answered {uploaded.file_transfer_id}, not {transfer_id}",
    )
    step(f"uploaded {len(CONTENT)} bytes")

    published = wait_for(sender, transfer_id, FileTransferStatus.PUBLISHED)
    expect(
        isinstance(published.published, datetime.datetime),
        f"published is {published.published!r}, not a date-time",
    )
    expect(
        published.file_transfer_size == len(CONTENT),
        f"fileTransferSize {published.file_transfer_size}, expected {len(CONTENT)}",
    )
    expect(
        published.checksum == checksum,
        f"checksum {published.checksum!r}, expected {checksum}",
    )
    expect(
        published.property_list.additional_properties == {"case": "42"},
        f"propertyList {published.property_list.additional_properties!r}",
    )
    step(f"Published at {published.published.isoformat()}")
    return transfer_id, checksum


def receive(recipient, resource, transfer_id, checksum):
    found = expect_status(
        search.sync_detailed(
            client=recipient,
            resource_id=resource,
            status=FileTransferStatus.PUBLISHED,
            role=SearchRole.RECIPIENT,
        ),
        200,
        "search",
    )
    expect(transfer_id in found, f"search found {found!r}, not {transfer_id}")
    step(f"search found it among {len(found)}")

    whole = expect_status(
        download.sync_detailed(transfer_id, client=recipient), 200, "download"
    )
    expect(isinstance(whole, File), f"download: not a File but {whole!r}")
    received = whole.payload.read()
    expect(
        received == CONTENT,
        f"downloaded {len(received)} bytes that differ from the upload",
    )
    md5 = hashlib.md5(received).hexdigest()
    expect(
        md5 == checksum,
        f"the download's MD5 {md5} differs from the checksum {checksum}",
    )
    step(f"downloaded {len(received)} bytes, MD5 {md5}")

    part = expect_status(
        download.sync_detailed(transfer_id, client=recipient, range_="bytes=10-19"),
        206,
        "ranged download",
    )
    expect(
        part.payload.read() == CONTENT[10:20], "bytes 10-19 differ from the upload's"
    )
    step("downloaded bytes 10-19 (206)")

    confirmed = expect_status(
        confirm_download.sync_detailed(transfer_id, client=recipient), 204, "confirm"
    )
    expect(confirmed is None, f"confirm answered a body: {confirmed!r}")
    step("confirmed the download")


def check_final(recipient, transfer_id):
    done = wait_for(recipient, transfer_id, FileTransferStatus.ALLCONFIRMEDDOWNLOADED)
    statuses = [r.current_recipient_file_transfer_status_code for r in done.recipients]
    expect(
        statuses == [RecipientFileTransferStatus.DOWNLOADCONFIRMED],
        f"recipient statuses {statuses!r}",
    )
    expect(
        all(
            isinstance(
                r.current_recipient_file_transfer_status_changed, datetime.datetime
            )
            for r in done.recipients
        ),
        "a recipient's status change time is not a date-time",
    )
    step("AllConfirmedDownloaded, the recipient DownloadConfirmed")


def check_unknown(recipient):
    unknown = str(uuid.uuid4())
    expect_problem(
        overview.sync_detailed(unknown, client=recipient),
        404,
        "BRO-00001",
        "the overview of an unknown transfer",
    )
    step("an unknown transfer: 404 BRO-00001")


def main():
    resource = os.environ["BROKER_RESOURCE"]
    owner = client(os.environ["BROKER_OWNER_TOKEN"])
    sender = client(os.environ["BROKER_SENDER_TOKEN"])
    recipient = client(os.environ["BROKER_RECIPIENT_TOKEN"])
    set_up(owner, resource)
    transfer_id, checksum = send(sender, resource)
    receive(recipient, resource, transfer_id, checksum)
    check_final(recipient, transfer_id)
    check_unknown(recipient)
    print(f"OK: {transfer_id}")


if __name__ == "__main__":
    try:
        main()
    except Mismatch as mismatch:
        print(f"FAIL: {mismatch}", file=sys.stderr)
        sys.exit(1)
    except errors.UnexpectedStatus as unexpected:
        print(
            f"FAIL: the broker answered {unexpected.status_code}, a status the document "
            f"does not name for that call: {unexpected.content[:500]!r}",
            file=sys.stderr,
        )
        sys.exit(1)
