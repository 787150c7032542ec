//! A ClamAV daemon client: the bytes go to `clamd` over TCP with the INSTREAM command
//! (`zINSTREAM\0`, then chunks each prefixed by its length as 4 big-endian bytes, then a
//! zero length), and clamd answers `stream: OK` or `stream: <name> FOUND`.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ScanBytes, ScanError, Scanner, Verdict};
use crate::domain::transfer::Transfer;

/// The largest chunk sent in one length-prefixed piece (storage hands over chunks of any size).
const MAX_CHUNK: usize = 1024 * 1024;
/// How long connecting and each read or write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Scans with the clamd at `addr` (`host:port`).
#[derive(Debug, Clone)]
pub struct ClamdScanner {
    addr: String,
}

impl ClamdScanner {
    /// A scanner for the clamd at `addr`.
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }

    /// Streams `bytes` to clamd and reads its verdict.
    pub async fn scan_stream(&self, mut bytes: ScanBytes) -> Result<Verdict, ScanError> {
        let io = |error: std::io::Error| ScanError(format!("clamd at {}: {error}", self.addr));
        let timed_out = || ScanError(format!("clamd at {} timed out", self.addr));
        let mut connection = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| timed_out())?
            .map_err(io)?;
        connection.write_all(b"zINSTREAM\0").await.map_err(io)?;
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|error| ScanError(format!("reading the upload: {error}")))?;
            for part in chunk.chunks(MAX_CHUNK) {
                let length = u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes();
                let write = async {
                    connection.write_all(&length).await?;
                    connection.write_all(part).await
                };
                tokio::time::timeout(IO_TIMEOUT, write)
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(io)?;
            }
        }
        connection.write_all(&[0, 0, 0, 0]).await.map_err(io)?;
        let mut reply = Vec::new();
        tokio::time::timeout(IO_TIMEOUT, connection.read_to_end(&mut reply))
            .await
            .map_err(|_| timed_out())?
            .map_err(io)?;
        parse_reply(&reply)
    }
}

/// Reads clamd's answer to INSTREAM.
fn parse_reply(reply: &[u8]) -> Result<Verdict, ScanError> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n', '\r']).trim();
    let answer = text.strip_prefix("stream:").map(str::trim).unwrap_or(text);
    if answer == "OK" {
        Ok(Verdict::Clean)
    } else if let Some(name) = answer.strip_suffix("FOUND") {
        Ok(Verdict::Malicious(name.trim().to_owned()))
    } else {
        // `INSTREAM size limit exceeded. ERROR` and the like: no verdict.
        Err(ScanError(format!("clamd answered {text:?}")))
    }
}

#[async_trait::async_trait]
impl Scanner for ClamdScanner {
    fn scans(&self, transfer: &Transfer) -> bool {
        transfer.use_virus_scan
    }

    fn active(&self) -> bool {
        true
    }

    fn reads_bytes(&self) -> bool {
        true
    }

    async fn scan(
        &self,
        _transfer: &Transfer,
        bytes: Option<ScanBytes>,
    ) -> Result<Verdict, ScanError> {
        let bytes = bytes.ok_or_else(|| ScanError("no bytes to scan".to_owned()))?;
        self.scan_stream(bytes).await
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::net::TcpListener;

    use super::*;

    /// A stand-in for clamd (an external system): reads one INSTREAM request, answers FOUND
    /// when the bytes contain `EICAR`, else OK, and hands back what it received.
    async fn fake_clamd() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut command = [0u8; 10];
            socket.read_exact(&mut command).await.unwrap();
            assert_eq!(&command, b"zINSTREAM\0");
            let mut received = Vec::new();
            loop {
                let mut length = [0u8; 4];
                socket.read_exact(&mut length).await.unwrap();
                let length = u32::from_be_bytes(length) as usize;
                if length == 0 {
                    break;
                }
                let mut chunk = vec![0; length];
                socket.read_exact(&mut chunk).await.unwrap();
                received.extend_from_slice(&chunk);
            }
            let infected = received.windows(5).any(|w| w == b"EICAR");
            let reply: &[u8] = if infected {
                b"stream: Eicar-Signature FOUND\0"
            } else {
                b"stream: OK\0"
            };
            socket.write_all(reply).await.unwrap();
            received
        });
        (addr, task)
    }

    fn stream(parts: &[&'static [u8]]) -> ScanBytes {
        let chunks: Vec<_> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(chunks).boxed()
    }

    #[tokio::test]
    async fn clean_bytes_are_ok_and_arrive_whole() {
        let (addr, server) = fake_clamd().await;
        let verdict = ClamdScanner::new(addr)
            .scan_stream(stream(&[b"hello ", b"world"]))
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Clean);
        assert_eq!(server.await.unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn a_signature_is_found() {
        let (addr, server) = fake_clamd().await;
        let verdict = ClamdScanner::new(addr)
            .scan_stream(stream(&[b"X5O!P%@AP EIC", b"AR-STANDARD"]))
            .await
            .unwrap();
        assert_eq!(verdict, Verdict::Malicious("Eicar-Signature".into()));
        server.await.unwrap();
    }

    #[tokio::test]
    async fn no_clamd_is_an_error_not_a_verdict() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert!(
            ClamdScanner::new(addr)
                .scan_stream(stream(&[b"x"]))
                .await
                .is_err()
        );
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0").unwrap(),
            Verdict::Malicious("Win.Test.EICAR_HDB-1".into())
        );
        assert!(parse_reply(b"INSTREAM size limit exceeded. ERROR\0").is_err());
    }
}
