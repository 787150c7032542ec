//! Compiles `proto/` with protox, a pure-Rust protobuf compiler, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["common", "token", "access", "filetransfer", "events"]
        .map(|name| root.join(format!("broker/{name}.proto")));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        // `bytes::Bytes` for every bytes field: file chunks move through without copies.
        .bytes(".")
        // The first message of a stream is large and rare; chunks are small and many.
        .boxed(".broker.filetransfer.v1.UploadMessage.message.start")
        .boxed(".broker.filetransfer.v1.UploadMessage.message.initialize")
        .boxed(".broker.filetransfer.v1.DownloadMessage.message.header")
        .compile_fds(descriptors)?;
    Ok(())
}
