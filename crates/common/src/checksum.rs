//! The digests a tus client may send with each request (`Upload-Checksum`, the tus checksum
//! extension): MD5, SHA-1 and SHA-256, all from AWS-LC.

use std::mem::MaybeUninit;

use aws_lc_sys::{
    SHA_CTX, SHA1_Final, SHA1_Init, SHA1_Update, SHA256_CTX, SHA256_Final, SHA256_Init,
    SHA256_Update,
};

use crate::md5::Md5;

/// The algorithms accepted, as `Tus-Checksum-Algorithm` lists them.
pub const ALGORITHMS: &str = "md5,sha1,sha256";

/// A digest of one request's bytes, fed in pieces.
pub enum RequestDigest {
    /// MD5 (the one Altinn offers).
    Md5(Box<Md5>),
    /// SHA-1.
    Sha1(Box<SHA_CTX>),
    /// SHA-256.
    Sha256(Box<SHA256_CTX>),
}

impl RequestDigest {
    /// A digest of `algorithm` (case-insensitive), if it is one of [`ALGORITHMS`].
    pub fn new(algorithm: &str) -> Option<Self> {
        // SAFETY (both arms): the Init functions set every field of the context they are given
        // and always succeed.
        match algorithm.to_ascii_lowercase().as_str() {
            "md5" => Some(Self::Md5(Box::default())),
            "sha1" => unsafe {
                let mut context = MaybeUninit::<SHA_CTX>::uninit();
                SHA1_Init(context.as_mut_ptr());
                Some(Self::Sha1(Box::new(context.assume_init())))
            },
            "sha256" => unsafe {
                let mut context = MaybeUninit::<SHA256_CTX>::uninit();
                SHA256_Init(context.as_mut_ptr());
                Some(Self::Sha256(Box::new(context.assume_init())))
            },
            _ => None,
        }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        // SAFETY: the pointer and length describe `bytes`; the contexts were initialised.
        match self {
            Self::Md5(md5) => md5.update(bytes),
            Self::Sha1(context) => unsafe {
                SHA1_Update(&mut **context, bytes.as_ptr().cast(), bytes.len());
            },
            Self::Sha256(context) => unsafe {
                SHA256_Update(&mut **context, bytes.as_ptr().cast(), bytes.len());
            },
        }
    }

    /// The digest of everything fed.
    pub fn finalize(self) -> Vec<u8> {
        // SAFETY: each buffer has room for the digest its Final function writes.
        match self {
            Self::Md5(md5) => md5.finalize().to_vec(),
            Self::Sha1(mut context) => unsafe {
                let mut digest = vec![0u8; 20];
                SHA1_Final(digest.as_mut_ptr(), &mut *context);
                digest
            },
            Self::Sha256(mut context) => unsafe {
                let mut digest = vec![0u8; 32];
                SHA256_Final(digest.as_mut_ptr(), &mut *context);
                digest
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn digest(algorithm: &str, pieces: &[&[u8]]) -> String {
        let mut digest = RequestDigest::new(algorithm).unwrap();
        for piece in pieces {
            digest.update(piece);
        }
        hex(&digest.finalize())
    }

    #[test]
    fn digests_match_their_standards_test_vectors() {
        assert_eq!(
            digest("MD5", &[b"a", b"bc"]),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            digest("sha1", &[b"ab", b"c"]),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            digest("sha256", &[b"abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(RequestDigest::new("crc32").is_none());
    }
}
