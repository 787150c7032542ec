"""Uploads one file to Broker's tus endpoint with tuspy, chunk by chunk, as a Python sender would;
driven by tests/e2e/tus_clients.rs, which reads the lines it prints on stdout:

    url <url>          the upload's URL (created by this run, or given to resume)
    start <offset>     the offset this run starts from (the server's, when resuming)
    chunk <offset>     a PATCH was accepted; the server's new offset
    stopped <offset>   TUS_STOP_AFTER_CHUNKS PATCHes were sent; the upload is left unfinished
    done <offset>      the upload is complete

The bearer token is read from BROKER_TOKEN and never printed.

Settings (environment):
    BROKER_TUS_ENDPOINT    the creation URL: .../broker/api/v1/filetransfer/upload/tus/{id}
    BROKER_TOKEN           a token with altinn:broker.write
    TUS_FILE               the file to send
    TUS_CHUNK_SIZE         bytes per PATCH
    TUS_UPLOAD_URL         resume this upload (from the server's offset) instead of creating one
    TUS_STOP_AFTER_CHUNKS  send this many PATCHes, then stop as a client that went away
    TUS_CHECKSUM           "1": send Upload-Checksum (tuspy's sha1) with every PATCH
"""

import os
import sys

from tusclient.client import TusClient


def setting(name, default=None):
    value = os.environ.get(name, "")
    if value == "":
        if default is None:
            sys.exit(f"{name} is not set")
        return default
    return value


def main():
    client = TusClient(
        setting("BROKER_TUS_ENDPOINT"),
        headers={"Authorization": "Bearer " + setting("BROKER_TOKEN")},
    )
    resume_url = setting("TUS_UPLOAD_URL", "")
    stop_after = int(setting("TUS_STOP_AFTER_CHUNKS", "0"))
    # With `url`, the uploader asks the server for its offset (HEAD) and goes on from there.
    uploader = client.uploader(
        setting("TUS_FILE"),
        url=resume_url or None,
        chunk_size=int(setting("TUS_CHUNK_SIZE")),
        metadata={"filename": "input.bin", "filetype": "application/octet-stream"},
        upload_checksum=setting("TUS_CHECKSUM", "0") == "1",
    )
    if uploader.url is None:
        uploader.set_url(uploader.create_url())
    print("url", uploader.url, flush=True)
    print("start", uploader.offset, flush=True)
    size = uploader.get_file_size()
    chunks = 0
    while uploader.offset < size:
        if stop_after and chunks == stop_after:
            print("stopped", uploader.offset, flush=True)
            return
        uploader.upload_chunk()
        chunks += 1
        print("chunk", uploader.offset, flush=True)
    print("done", uploader.offset, flush=True)


if __name__ == "__main__":
    main()
