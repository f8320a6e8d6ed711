//! Encryption of batches at rest: AES-256-GCM, one seal per batch (`docs/format.md`,
//! "Encrypted batches").
//!
//! The log knows nothing of master keys: its caller hands it a [`BatchKey`] (a data key and the
//! generation number that names it) to append with, and a [`BatchKeys`] to look generations up
//! when reading. A batch names the generation it was sealed with, so a caller that rotates keys
//! keeps every old generation available and history is never rewritten.
//!
//! Nonces are 96 random bits drawn per batch and stored in the batch. A nonce derived from the
//! batch's place (log id, first sequence index, generation) would repeat after a crash: the
//! torn tail of a log is cut and the same sequence indexes are written again with other
//! records, under the same key — and a repeated GCM nonce leaks the XOR of the two plaintexts
//! and the authentication key. Random nonces stay unique with probability 1 - 2^-32 for up to
//! 2^32 batches per data key (NIST SP 800-38D, 8.3); rotating the data key resets the count.

use std::fmt;
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of a data key (AES-256).
pub const DATA_KEY_LEN: usize = 32;
/// Bytes of a batch nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of the GCM authentication tag at the end of an encrypted batch.
pub const TAG_LEN: usize = 16;

/// A data key and the generation number batches sealed with it carry.
#[derive(Clone)]
pub struct BatchKey {
    generation: u32,
    key: Arc<LessSafeKey>,
}

impl fmt::Debug for BatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("BatchKey").field("generation", &self.generation).finish_non_exhaustive()
    }
}

impl BatchKey {
    pub fn new(generation: u32, material: &[u8; DATA_KEY_LEN]) -> BatchKey {
        // A 32-byte key is always a valid AES-256 key.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, material).expect("32 bytes is an AES-256 key");
        BatchKey { generation, key: Arc::new(LessSafeKey::new(unbound)) }
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub(crate) fn seal(&self, nonce: [u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = Nonce::assume_unique_for_key(nonce);
        // Fails only for inputs longer than GCM allows (64 GiB); batches are at most 16 MiB.
        #[allow(clippy::expect_used)]
        let tag: Tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
            .expect("batch within the GCM length limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts `in_out` (ciphertext followed by the tag) in place; returns the plaintext length,
    /// or `None` if the ciphertext, the tag or the authenticated data were changed.
    pub(crate) fn open(&self, nonce: [u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Option<usize> {
        let nonce = Nonce::assume_unique_for_key(nonce);
        self.key.open_in_place(nonce, Aad::from(aad), in_out).ok().map(|plain| plain.len())
    }
}

/// Finds the data key of a generation when a read meets an encrypted batch.
pub trait BatchKeys: Send + Sync {
    /// The key of `generation`, or `None` if it is not available (the read then fails with
    /// [`crate::LogError::KeyUnavailable`]).
    fn key(&self, generation: u32) -> Option<BatchKey>;
}

/// No keys: reading an encrypted batch fails with [`crate::LogError::KeyUnavailable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeys;

impl BatchKeys for NoKeys {
    fn key(&self, _generation: u32) -> Option<BatchKey> {
        None
    }
}

impl BatchKeys for BatchKey {
    fn key(&self, generation: u32) -> Option<BatchKey> {
        (generation == self.generation).then(|| self.clone())
    }
}

/// 96 random bits from the operating system's generator.
pub(crate) fn random_nonce() -> Option<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    Some(nonce)
}
