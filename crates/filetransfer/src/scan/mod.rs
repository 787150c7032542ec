//! Malware scanners: the step between UploadProcessing and Published, for transfers with the
//! virus scan on (`useVirusScan`; a resource approved for it lets a sender turn it off with
//! `disableVirusScan`). Which scanner runs is the operator's choice:
//!
//! - [`NoScanner`]: nothing is scanned; uploads are published at once (the default).
//! - [`ExternalScanner`]: a scanner outside the broker watches the storage (as Microsoft
//!   Defender for Storage does for Altinn) and posts its verdict to
//!   `POST /broker/api/v1/webhooks/malwarescanresults` with the configured credential; the
//!   transfer waits in UploadProcessing until then (or until the stuck-processing job fails it).
//! - [`ClamdScanner`]: the service streams the bytes to a ClamAV daemon itself (`clamd`).
//!
//! A scanner only gives a [`Verdict`]; the service applies it (publish, or fail and delete).

mod clamd;

use bytes::Bytes;
use futures::stream::BoxStream;

pub use clamd::ClamdScanner;

use crate::domain::transfer::Transfer;

/// What a malware scanner says about an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found: publish it.
    Clean,
    /// Malware found, with the scanner's name for it (may be empty).
    Malicious(String),
    /// The verdict will come later, through the malware-scan-result webhook.
    Pending,
}

/// A scan that could not be completed; the transfer stays in UploadProcessing.
#[derive(Debug, thiserror::Error)]
#[error("malware scan failed: {0}")]
pub struct ScanError(pub String);

/// The bytes a scanner reads.
pub type ScanBytes = BoxStream<'static, Result<Bytes, object_store::Error>>;

/// The seam where a malware scanner plugs in.
#[async_trait::async_trait]
pub trait Scanner: Send + Sync + 'static {
    /// Whether this scanner examines `transfer` at all; when not, publishing does not wait.
    fn scans(&self, transfer: &Transfer) -> bool;
    /// Whether uploads that ask for it are scanned at all (a malware scanner is configured).
    fn active(&self) -> bool;
    /// Whether [`Scanner::scan`] reads the bytes (so the service opens them for it).
    fn reads_bytes(&self) -> bool;
    /// The verdict on `transfer`'s uploaded bytes (`bytes` is `None` when the scanner does not
    /// read them).
    async fn scan(
        &self,
        transfer: &Transfer,
        bytes: Option<ScanBytes>,
    ) -> Result<Verdict, ScanError>;
}

/// No malware scan: every upload is clean and published at once.
pub struct NoScanner;

#[async_trait::async_trait]
impl Scanner for NoScanner {
    fn scans(&self, _transfer: &Transfer) -> bool {
        false
    }

    fn active(&self) -> bool {
        false
    }

    fn reads_bytes(&self) -> bool {
        false
    }

    async fn scan(
        &self,
        _transfer: &Transfer,
        _bytes: Option<ScanBytes>,
    ) -> Result<Verdict, ScanError> {
        Ok(Verdict::Clean)
    }
}

/// A scanner outside the broker that reports through the webhook.
pub struct ExternalScanner;

#[async_trait::async_trait]
impl Scanner for ExternalScanner {
    fn scans(&self, transfer: &Transfer) -> bool {
        transfer.use_virus_scan
    }

    fn active(&self) -> bool {
        true
    }

    fn reads_bytes(&self) -> bool {
        false
    }

    async fn scan(
        &self,
        _transfer: &Transfer,
        _bytes: Option<ScanBytes>,
    ) -> Result<Verdict, ScanError> {
        Ok(Verdict::Pending)
    }
}

/// A verdict as the webhook receives it: `NoThreatsFound` (Defender's words, also
/// `No threats found` and `Clean`) or `Malicious` (also `Infected`), case-insensitively.
pub fn parse_verdict(text: &str, threat: &str) -> Option<Verdict> {
    let words: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    match words.as_str() {
        "nothreatsfound" | "clean" => Some(Verdict::Clean),
        "malicious" | "infected" => Some(Verdict::Malicious(threat.to_owned())),
        _ => None,
    }
}

/// Compares a presented credential with the configured one in time independent of where they
/// differ.
pub fn credential_matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_read_as_scanners_write_them() {
        assert_eq!(parse_verdict("No threats found", ""), Some(Verdict::Clean));
        assert_eq!(parse_verdict("NoThreatsFound", ""), Some(Verdict::Clean));
        assert_eq!(
            parse_verdict("Malicious", "Eicar"),
            Some(Verdict::Malicious("Eicar".into()))
        );
        assert_eq!(parse_verdict("maybe", ""), None);
        assert!(credential_matches("secret", "secret"));
        assert!(!credential_matches("secreT", "secret"));
        assert!(!credential_matches("", "secret"));
    }
}
