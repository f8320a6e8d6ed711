//! Encryption at rest: a local keyring of KMS master keys, stream data keys wrapped by them, and
//! StartStreamEncryption / StopStreamEncryption.
//!
//! Envelope encryption as AWS does it: each stream has data keys (random 256-bit AES keys), one
//! per *generation*, each wrapped (AES-256-GCM, random nonce, the stream incarnation, generation
//! and master key id as authenticated data) by the master key that was current when it was
//! made, and stored wrapped in the stream document. The record log seals each batch written
//! while encryption is on with the current generation's data key (`kinesin_log::BatchKey`); a
//! batch names its generation, so starting encryption with another master key adds a
//! generation and every older batch stays readable with its own.
//!
//! The keyring is read once at start (`--kms-keyring FILE` and/or `KINESIN_KMS_KEYS`); a key's
//! state there (enabled, disabled, an invalid state, access denied) decides what puts, reads and
//! StartStreamEncryption answer, with the KMS exception AWS gives for it. Without a keyring entry
//! for `alias/aws/kinesis`, kinesin makes that key on first start (the AWS-managed key) and keeps
//! it in `<data-dir>/kms/aws-kinesis.toml` (mode 0600).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use parking_lot::Mutex;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use kinesin_log::{BatchKey, BatchKeys, DATA_KEY_LEN};
use kinesin_wire::error::ErrorKind;
use kinesin_wire::ops::{Output, StreamEncryptionInput};

use crate::meta::{StreamMeta, StreamStatus};
use crate::Service;

/// The alias of the AWS-managed key for Kinesis.
pub const AWS_MANAGED_ALIAS: &str = "alias/aws/kinesis";
/// StartStreamEncryption + StopStreamEncryption calls per stream per rolling 24 hours (AWS: 25).
pub const ENCRYPTION_CHANGES_PER_DAY: usize = 25;
/// Most master keys one keyring holds.
pub const KEYRING_KEYS_MAX: usize = 10_000;
/// Most data-key generations one stream keeps (one per change of master key).
pub const DATA_KEY_GENERATIONS_MAX: usize = 1_000;
/// Most unwrapped data keys (and unwrap errors) kept in memory; the least recently used goes
/// first. One per encrypted stream and generation in use keeps every hit a hit.
pub const DATA_KEY_CACHE_MAX: usize = 4_096;
const DAY_MS: i64 = 24 * 3600 * 1000;
const WRAP_NONCE_LEN: usize = 12;
const WRAP_TAG_LEN: usize = 16;

/// Encryption state of a stream, in its metadata document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EncryptionMeta {
    /// Every data key the stream ever used, oldest first; writes use the last one while
    /// `StreamMeta::encryption_key_id` is set.
    #[serde(default)]
    pub data_keys: Vec<DataKeyMeta>,
    /// When StartStreamEncryption / StopStreamEncryption ran, for AWS's daily limit.
    #[serde(default)]
    pub changes_ms: Vec<i64>,
}

/// One data-key generation of a stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataKeyMeta {
    pub generation: u32,
    /// Id of the master key that wraps it.
    pub master_key_id: String,
    /// base64 of nonce (12) ++ AES-256-GCM(data key) (32) ++ tag (16).
    pub wrapped: String,
    pub created_ms: i64,
}

/// How a key of the keyring may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    /// `enabled = false`: KMSDisabledException.
    Disabled,
    /// `state = "PendingDeletion"` (or any KMS state other than Enabled/Disabled):
    /// KMSInvalidStateException.
    Invalid(String),
    /// `deny = true`: KMSAccessDeniedException.
    Denied,
}

/// A master key of the keyring.
pub struct MasterKey {
    pub id: String,
    pub arn: String,
    pub aliases: Vec<String>,
    pub state: KeyState,
    material: Option<LessSafeKey>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("arn", &self.arn)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// One `[[key]]` of a keyring file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KeySpec {
    id: String,
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    material: Option<String>,
    #[serde(default)]
    material_file: Option<PathBuf>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    deny: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    #[serde(default)]
    key: Vec<KeySpec>,
}

/// Where the keyring comes from (`ServiceConfig::kms_keyring`).
#[derive(Clone, Debug, Default)]
pub struct KeyringConfig {
    /// `--kms-keyring FILE`.
    pub file: Option<PathBuf>,
    /// `KINESIN_KMS_KEYS`: the same TOML, inline.
    pub inline: Option<String>,
}

/// Why the keyring cannot be loaded (stops the start).
#[derive(Debug, thiserror::Error)]
#[error("KMS keyring {source_name}: {why}")]
pub struct KeyringError {
    source_name: String,
    why: String,
}

fn keyring_error(source_name: &str, why: impl Into<String>) -> KeyringError {
    KeyringError { source_name: source_name.to_string(), why: why.into() }
}

/// The master keys and the unwrapped data keys.
pub struct Kms {
    keys: Vec<MasterKey>,
    /// Unwrapped data keys by (stream incarnation, generation); errors are cached too (the
    /// keyring does not change while the server runs). Bounded: [`DATA_KEY_CACHE_MAX`].
    cache: Mutex<KeyCache>,
}

/// A bounded map of unwrapped data keys that forgets the least recently used one when full.
struct KeyCache {
    capacity: usize,
    /// Key → (value, last use).
    entries: HashMap<(u64, u32), (Result<BatchKey, ServiceError>, u64)>,
    tick: u64,
}

impl KeyCache {
    fn new(capacity: usize) -> KeyCache {
        KeyCache { capacity: capacity.max(1), entries: HashMap::new(), tick: 0 }
    }

    fn get(&mut self, key: (u64, u32)) -> Option<Result<BatchKey, ServiceError>> {
        self.tick += 1;
        let (value, used) = self.entries.get_mut(&key)?;
        *used = self.tick;
        Some(value.clone())
    }

    fn insert(&mut self, key: (u64, u32), value: Result<BatchKey, ServiceError>) {
        self.tick += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            // A scan, but only on a miss with a full cache: misses are one per stream and
            // generation, not one per request.
            if let Some(oldest) = self.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k) {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, self.tick));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kms").field("keys", &self.keys).finish_non_exhaustive()
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS generator failing is not something a server can go on without.
    #[allow(clippy::expect_used)]
    SystemRandom::new().fill(&mut out).expect("the system random generator works");
    out
}

fn aes_key(material: &[u8; DATA_KEY_LEN]) -> LessSafeKey {
    #[allow(clippy::expect_used)]
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, material).expect("32 bytes is an AES-256 key"))
}

/// Wraps a data key with a master key (AES-256-GCM, random nonce); `aad` binds it to its use.
pub(crate) fn wrap(master: &LessSafeKey, data_key: &[u8; DATA_KEY_LEN], aad: &[u8]) -> Vec<u8> {
    let nonce = random_bytes::<WRAP_NONCE_LEN>();
    let mut out = Vec::with_capacity(WRAP_NONCE_LEN + DATA_KEY_LEN + WRAP_TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(data_key);
    #[allow(clippy::expect_used)]
    let tag = master
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[WRAP_NONCE_LEN..],
        )
        .expect("32 bytes within the GCM limit");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Unwraps what [`wrap`] made; `None` if it was changed, or the master key or `aad` differ.
pub(crate) fn unwrap(master: &LessSafeKey, wrapped: &[u8], aad: &[u8]) -> Option<[u8; DATA_KEY_LEN]> {
    if wrapped.len() != WRAP_NONCE_LEN + DATA_KEY_LEN + WRAP_TAG_LEN {
        return None;
    }
    let mut nonce = [0u8; WRAP_NONCE_LEN];
    nonce.copy_from_slice(&wrapped[..WRAP_NONCE_LEN]);
    let mut buf = wrapped[WRAP_NONCE_LEN..].to_vec();
    let plain = master.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf).ok()?;
    let mut out = [0u8; DATA_KEY_LEN];
    out.copy_from_slice(plain);
    Some(out)
}

fn wrap_aad(incarnation: u64, generation: u32, master_key_id: &str) -> Vec<u8> {
    format!("kinesin data key v1\0{incarnation}\0{generation}\0{master_key_id}").into_bytes()
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn new_uuid() -> String {
    let b = random_bytes::<16>();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

impl Kms {
    /// Loads the keyring, and makes (or loads) the AWS-managed key unless the keyring has a key
    /// with its alias.
    pub fn load(
        cfg: &KeyringConfig,
        data_dir: &Path,
        region: &str,
        account: &str,
    ) -> Result<Kms, KeyringError> {
        let mut keys = Vec::new();
        if let Some(path) = &cfg.file {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| keyring_error(&name, e.to_string()))?;
            let base = path.parent().unwrap_or(Path::new("."));
            load_text(&text, &name, base, region, account, &mut keys)?;
        }
        if let Some(text) = &cfg.inline {
            load_text(text, "KINESIN_KMS_KEYS", Path::new("."), region, account, &mut keys)?;
        }
        if !keys.iter().any(|k| k.aliases.iter().any(|a| a == AWS_MANAGED_ALIAS)) {
            let path = data_dir.join("kms").join("aws-kinesis.toml");
            let name = path.display().to_string();
            if !path.exists() {
                make_managed_key(&path)
                    .map_err(|e| keyring_error(&name, format!("cannot create it: {e}")))?;
                tracing::info!(file = %name, "created the AWS-managed KMS key alias/aws/kinesis");
            }
            let text = std::fs::read_to_string(&path).map_err(|e| keyring_error(&name, e.to_string()))?;
            load_text(&text, &name, data_dir, region, account, &mut keys)?;
        }
        if keys.len() > KEYRING_KEYS_MAX {
            return Err(keyring_error("keyring", format!("{} keys, at most {KEYRING_KEYS_MAX}", keys.len())));
        }
        Ok(Kms { keys, cache: Mutex::new(KeyCache::new(DATA_KEY_CACHE_MAX)) })
    }

    /// The key a KeyId names, in any form AWS accepts: key id, key ARN, alias name, alias ARN.
    pub fn resolve(&self, key_id: &str) -> Result<&MasterKey, ServiceError> {
        let found = if let Some(rest) = key_id.strip_prefix("arn:") {
            // arn:<partition>:kms:<region>:<account>:key/<id> | alias/<name>
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            match parts[..] {
                [_, "kms", region, account, resource] => self.keys.iter().find(|k| {
                    k.arn == key_id
                        || (resource.starts_with("alias/")
                            && k.aliases.iter().any(|a| a == resource)
                            && arn_region_account(&k.arn) == Some((region, account)))
                }),
                _ => None,
            }
        } else if key_id.starts_with("alias/") {
            self.keys.iter().find(|k| k.aliases.iter().any(|a| a == key_id))
        } else {
            self.keys.iter().find(|k| k.id == key_id)
        };
        found.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::KmsNotFound,
                format!(
                    "Invalid keyId '{key_id}': no such KMS key or alias in kinesin's keyring. Use a key id, key ARN, alias name (alias/...) or alias ARN of a key in --kms-keyring / KINESIN_KMS_KEYS, or {AWS_MANAGED_ALIAS}."
                ),
            )
        })
    }

    fn by_id(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The master key's material if it may be used now, else the KMS exception AWS answers.
    fn usable<'a>(&self, key: &'a MasterKey) -> Result<&'a LessSafeKey, ServiceError> {
        match (&key.state, &key.material) {
            (KeyState::Enabled, Some(material)) => Ok(material),
            (KeyState::Enabled, None) => Err(ServiceError::new(
                ErrorKind::KmsInvalidState,
                format!("{} has no key material in kinesin's keyring (material or material_file); add it and restart kinesin.", key.arn),
            )),
            (KeyState::Disabled, _) => Err(ServiceError::new(
                ErrorKind::KmsDisabled,
                format!("{} is disabled. Set enabled = true for this key in kinesin's keyring and restart kinesin.", key.arn),
            )),
            (KeyState::Invalid(state), _) => Err(ServiceError::new(
                ErrorKind::KmsInvalidState,
                format!("{} is {state}. Set state = \"Enabled\" for this key in kinesin's keyring and restart kinesin.", key.arn),
            )),
            (KeyState::Denied, _) => Err(ServiceError::new(
                ErrorKind::KmsAccessDenied,
                format!("kinesin is not allowed to use {} (deny = true in its keyring). Remove deny and restart kinesin.", key.arn),
            )),
        }
    }

    /// A new data key wrapped by `master`, as generation `generation` of the stream.
    fn new_data_key(
        &self,
        master: &MasterKey,
        incarnation: u64,
        generation: u32,
        now: i64,
    ) -> Result<DataKeyMeta, ServiceError> {
        let material = self.usable(master)?;
        let data_key = random_bytes::<DATA_KEY_LEN>();
        let wrapped = wrap(material, &data_key, &wrap_aad(incarnation, generation, &master.id));
        // Not cached here: if the metadata commit fails, this generation number is made again
        // with another key. The first use unwraps it from the committed document.
        Ok(DataKeyMeta {
            generation,
            master_key_id: master.id.clone(),
            wrapped: b64().encode(wrapped),
            created_ms: now,
        })
    }

    /// The data key of one generation of a stream, unwrapped (cached).
    pub(crate) fn data_key(&self, s: &StreamMeta, generation: u32) -> Result<BatchKey, ServiceError> {
        if let Some(hit) = self.cache.lock().get((s.incarnation, generation)) {
            return hit;
        }
        let Some(meta) = s.encryption.data_keys.iter().find(|d| d.generation == generation) else {
            // Not cached: a reader holding an older snapshot of the stream may meet a batch of
            // a generation committed after it took the snapshot.
            return Err(ServiceError::internal(format!(
                "Stream {} has records encrypted with data key generation {generation}, which its metadata does not hold (yet). Retry.",
                s.name
            )));
        };
        let result = self.unwrap_data_key(s, meta);
        self.cache.lock().insert((s.incarnation, generation), result.clone());
        result
    }

    fn unwrap_data_key(&self, s: &StreamMeta, meta: &DataKeyMeta) -> Result<BatchKey, ServiceError> {
        let generation = meta.generation;
        let Some(master) = self.by_id(&meta.master_key_id) else {
            return Err(ServiceError::new(
                ErrorKind::KmsNotFound,
                format!(
                    "The KMS key {} that encrypts records of stream {} is not in kinesin's keyring. Put it back (same id and material) and restart kinesin.",
                    meta.master_key_id, s.name
                ),
            ));
        };
        let material = self.usable(master)?;
        let wrapped = decode_wrapped(&meta.wrapped).map_err(|why| {
            // The detail (which document, what is wrong) goes to the log; the client gets a
            // generic internal failure.
            tracing::error!(
                stream = %s.name,
                generation,
                "the metadata document of stream {} (metadata store) holds a damaged wrapped data key for generation {generation}: {why}",
                s.name
            );
            ServiceError::internal(format!(
                "The stored data key of stream {} (generation {generation}) is damaged; the server log has the details.",
                s.name
            ))
        })?;
        let aad = wrap_aad(s.incarnation, generation, &master.id);
        let data_key = unwrap(material, &wrapped, &aad).ok_or_else(|| {
            ServiceError::new(
                ErrorKind::KmsInvalidState,
                format!(
                    "The data key of stream {} (generation {generation}) does not unwrap with {}: the key material in kinesin's keyring is not the material it was wrapped with. Restore the original material and restart kinesin.",
                    s.name, master.arn
                ),
            )
        })?;
        Ok(BatchKey::new(generation, &data_key))
    }

    /// The key new batches of the stream are sealed with, or `None` if encryption is off.
    pub(crate) fn write_key(&self, s: &StreamMeta) -> Result<Option<BatchKey>, ServiceError> {
        if s.encryption_key_id.is_none() {
            return Ok(None);
        }
        let Some(current) = s.encryption.data_keys.last() else {
            return Err(ServiceError::internal(format!(
                "Stream {} is encrypted but has no data key.",
                s.name
            )));
        };
        self.data_key(s, current.generation).map(Some)
    }

    /// The keys a read of the stream may need.
    pub(crate) fn read_keys<'a>(&'a self, s: &'a StreamMeta) -> StreamKeys<'a> {
        StreamKeys { kms: self, stream: s }
    }
}

/// The data keys of one stream, for the log's reads.
pub(crate) struct StreamKeys<'a> {
    kms: &'a Kms,
    stream: &'a StreamMeta,
}

impl BatchKeys for StreamKeys<'_> {
    fn key(&self, generation: u32) -> Option<BatchKey> {
        self.kms.data_key(self.stream, generation).ok()
    }
}

impl StreamKeys<'_> {
    /// What a read that met a batch of `generation` without its key answers.
    pub(crate) fn error(&self, generation: u32) -> ServiceError {
        match self.kms.data_key(self.stream, generation) {
            Err(e) => e,
            Ok(_) => ServiceError::internal("the data key became available; retry"),
        }
    }
}

/// The read error for a log error: KMS exceptions for unavailable keys, an internal failure
/// (never the data) for a batch that fails its authentication.
pub(crate) fn read_error(keys: &StreamKeys<'_>, e: &kinesin_log::LogError) -> Option<ServiceError> {
    match e {
        kinesin_log::LogError::KeyUnavailable { generation, .. } => Some(keys.error(*generation)),
        kinesin_log::LogError::Unauthentic { .. } => Some(ServiceError::internal(format!(
            "Stored records of stream {} failed their integrity check (changed on disk) and are not served: {e}",
            keys.stream.name
        ))),
        _ => None,
    }
}

fn arn_region_account(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts[..] {
        ["arn", _, "kms", region, account, _] => Some((region, account)),
        _ => None,
    }
}

fn load_text(
    text: &str,
    name: &str,
    base: &Path,
    region: &str,
    account: &str,
    keys: &mut Vec<MasterKey>,
) -> Result<(), KeyringError> {
    let file: KeyringFile = toml::from_str(text).map_err(|e| keyring_error(name, e.to_string()))?;
    for spec in file.key {
        let id = spec.id.clone();
        let err = |why: String| keyring_error(name, format!("key {id}: {why}"));
        if !is_uuid(&spec.id) {
            return Err(err(
                "id must be a UUID like AWS key ids (1234abcd-12ab-34cd-56ef-1234567890ab)".into()
            ));
        }
        let arn =
            spec.arn.clone().unwrap_or_else(|| format!("arn:aws:kms:{region}:{account}:key/{}", spec.id));
        if arn_region_account(&arn).is_none() || !arn.ends_with(&format!(":key/{}", spec.id)) {
            return Err(err(format!("arn {arn} must be arn:aws:kms:REGION:ACCOUNT:key/{}", spec.id)));
        }
        for alias in &spec.aliases {
            if !alias.starts_with("alias/") || alias.len() <= "alias/".len() {
                return Err(err(format!("alias {alias} must start with alias/")));
            }
        }
        let material_b64 = match (&spec.material, &spec.material_file) {
            (Some(_), Some(_)) => return Err(err("give material or material_file, not both".into())),
            (Some(m), None) => Some(m.trim().to_string()),
            (None, Some(f)) => {
                let path = base.join(f);
                Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| err(format!("material_file {}: {e}", path.display())))?
                        .trim()
                        .to_string(),
                )
            }
            (None, None) => None,
        };
        let material = match material_b64 {
            None => None,
            Some(m) => {
                let raw =
                    b64().decode(m.as_bytes()).map_err(|e| err(format!("material is not base64: {e}")))?;
                let raw: [u8; DATA_KEY_LEN] = raw.try_into().map_err(|raw: Vec<u8>| {
                    err(format!("material must be 32 bytes (base64 of 32 random bytes), not {}", raw.len()))
                })?;
                Some(aes_key(&raw))
            }
        };
        let state = match (spec.deny, spec.enabled, spec.state.as_deref()) {
            (true, _, _) => KeyState::Denied,
            (false, false, _) | (false, true, Some("Disabled")) => KeyState::Disabled,
            (false, true, None | Some("Enabled")) => KeyState::Enabled,
            (false, true, Some(other)) => KeyState::Invalid(other.to_string()),
        };
        if state == KeyState::Enabled && material.is_none() {
            return Err(err("an enabled key needs material (base64) or material_file".into()));
        }
        if keys.iter().any(|k| k.id == spec.id) {
            return Err(err("listed twice".into()));
        }
        for alias in &spec.aliases {
            if keys.iter().any(|k| k.aliases.contains(alias)) {
                return Err(err(format!("alias {alias} already names another key")));
            }
        }
        keys.push(MasterKey { id: spec.id, arn, aliases: spec.aliases, state, material });
    }
    Ok(())
}

/// A stored wrapped data key decoded, or what is wrong with it: it must be the base64 of
/// nonce, wrapped key and tag.
fn decode_wrapped(stored: &str) -> Result<Vec<u8>, String> {
    let wrapped = b64().decode(stored).map_err(|e| format!("not base64: {e}"))?;
    let expected = WRAP_NONCE_LEN + DATA_KEY_LEN + WRAP_TAG_LEN;
    if wrapped.len() != expected {
        return Err(format!("{} bytes, expected {expected}", wrapped.len()));
    }
    Ok(wrapped)
}

/// Writes a new AWS-managed key file, atomically and 0600 from its first byte
/// (`kinesin_log::replace_file`), in a 0700 directory.
fn make_managed_key(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let spec = KeyringFile {
        key: vec![KeySpec {
            id: new_uuid(),
            arn: None,
            aliases: vec![AWS_MANAGED_ALIAS.to_string()],
            material: Some(b64().encode(random_bytes::<DATA_KEY_LEN>())),
            material_file: None,
            enabled: true,
            state: None,
            deny: false,
        }],
    };
    let text = toml::to_string(&spec).map_err(std::io::Error::other)?;
    let mut bytes =
        b"# kinesin's AWS-managed KMS key (alias/aws/kinesis). Keep it: records encrypted with it need it.\n"
            .to_vec();
    bytes.extend_from_slice(text.as_bytes());
    kinesin_log::replace_file(&kinesin_log::FsStorage, path, &bytes, 0o600, true)
}

impl Service {
    fn encryption_rate(&self, s: &StreamMeta, now: i64) -> Result<Vec<i64>, ServiceError> {
        let recent: Vec<i64> = s.encryption.changes_ms.iter().copied().filter(|t| now - t < DAY_MS).collect();
        if recent.len() >= ENCRYPTION_CHANGES_PER_DAY {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "Stream {} under account {} has already changed its encryption {ENCRYPTION_CHANGES_PER_DAY} times in the last 24 hours, the limit. Retry after {}.",
                    s.name,
                    self.cfg.account_id,
                    crate::time::amz_utc_string(recent.iter().min().copied().unwrap_or(now) + DAY_MS)
                ),
            ));
        }
        Ok(recent)
    }

    fn check_kms_type(encryption_type: &str) -> Result<(), ServiceError> {
        if encryption_type != "KMS" {
            return Err(ServiceError::invalid_argument(format!(
                "EncryptionType {encryption_type} is not valid here: the only encryption type is KMS."
            )));
        }
        Ok(())
    }

    pub(crate) fn start_stream_encryption(&self, req: StreamEncryptionInput) -> Result<Output, ServiceError> {
        Self::check_kms_type(&req.encryption_type)?;
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        let master = self.kms.resolve(&req.key_id)?;
        self.kms.usable(master)?;
        let mut recent = self.encryption_rate(&s, now)?;
        let mut next = (*s).clone();
        let reuse =
            next.encryption.data_keys.last().filter(|d| d.master_key_id == master.id).map(|d| d.generation);
        let generation = match reuse {
            Some(generation) => generation,
            None => {
                if next.encryption.data_keys.len() >= DATA_KEY_GENERATIONS_MAX {
                    return Err(ServiceError::new(
                        ErrorKind::LimitExceeded,
                        format!("Stream {name} already has {DATA_KEY_GENERATIONS_MAX} data key generations, the most one stream keeps."),
                    ));
                }
                let generation = next.encryption.data_keys.last().map_or(1, |d| d.generation + 1);
                let meta = self.kms.new_data_key(master, s.incarnation, generation, now)?;
                next.encryption.data_keys.push(meta);
                generation
            }
        };
        next.encryption_key_id = Some(req.key_id.clone());
        recent.push(now);
        next.encryption.changes_ms = recent;
        if self.cfg.update_stream_ms > 0 {
            next.status = StreamStatus::Updating;
            next.status_until_ms = now + self.cfg.update_stream_ms as i64;
        }
        self.save(&mut st, next)?;
        tracing::info!(stream = %name, key = %master.arn, generation, "encryption started");
        Ok(Output::Empty)
    }

    pub(crate) fn stop_stream_encryption(&self, req: StreamEncryptionInput) -> Result<Output, ServiceError> {
        Self::check_kms_type(&req.encryption_type)?;
        let name = self.resolve_name(req.stream_name.as_deref(), req.stream_arn.as_ref())?;
        let now = self.clock.now_ms();
        let mut st = self.state.lock();
        let s = self.find_active(&st, &name)?;
        let Some(current) = s.encryption_key_id.clone() else {
            return Err(ServiceError::invalid_argument(format!(
                "Stream {name} under account {} is not encrypted; there is no encryption to stop.",
                self.cfg.account_id
            )));
        };
        // The KeyId must name the key in use, in any form.
        let current_master = s.encryption.data_keys.last().map(|d| d.master_key_id.as_str());
        let same = req.key_id == current
            || self.kms.resolve(&req.key_id).ok().map(|k| k.id.as_str()) == current_master
                && current_master.is_some();
        if !same {
            return Err(ServiceError::invalid_argument(format!(
                "KeyId {} does not match the key stream {name} is encrypted with ({current}). Pass that KeyId to StopStreamEncryption.",
                req.key_id
            )));
        }
        let mut recent = self.encryption_rate(&s, now)?;
        let mut next = (*s).clone();
        next.encryption_key_id = None;
        recent.push(now);
        next.encryption.changes_ms = recent;
        if self.cfg.update_stream_ms > 0 {
            next.status = StreamStatus::Updating;
            next.status_until_ms = now + self.cfg.update_stream_ms as i64;
        }
        self.save(&mut st, next)?;
        tracing::info!(stream = %name, "encryption stopped; records written before stay encrypted");
        Ok(Output::Empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip_and_detect_changes() {
        let master = aes_key(&[5u8; 32]);
        let other = aes_key(&[6u8; 32]);
        let data_key = [9u8; 32];
        let wrapped = wrap(&master, &data_key, b"ctx");
        assert_eq!(wrapped.len(), 60);
        assert!(!wrapped.windows(32).any(|w| w == data_key), "data key in the clear");
        assert_eq!(unwrap(&master, &wrapped, b"ctx"), Some(data_key));
        assert_eq!(unwrap(&other, &wrapped, b"ctx"), None, "another master key");
        assert_eq!(unwrap(&master, &wrapped, b"other ctx"), None, "another stream or generation");
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            assert_eq!(unwrap(&master, &bad, b"ctx"), None, "change at {i}");
        }
        assert_ne!(wrap(&master, &data_key, b"ctx"), wrapped, "fresh nonce per wrap");
    }

    fn kms(text: &str) -> (Kms, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = KeyringConfig { file: None, inline: Some(text.to_string()) };
        (Kms::load(&cfg, dir.path(), "us-east-1", "123456789012").unwrap(), dir)
    }

    const ID: &str = "11111111-2222-4333-8444-555555555555";

    #[test]
    fn key_ids_resolve_in_every_form() {
        let m = b64().encode([1u8; 32]);
        let (k, _dir) =
            kms(&format!("[[key]]\nid = \"{ID}\"\naliases = [\"alias/orders\"]\nmaterial = \"{m}\"\n"));
        for form in [
            ID.to_string(),
            format!("arn:aws:kms:us-east-1:123456789012:key/{ID}"),
            "alias/orders".to_string(),
            "arn:aws:kms:us-east-1:123456789012:alias/orders".to_string(),
        ] {
            assert_eq!(k.resolve(&form).unwrap().id, ID, "{form}");
        }
        for bad in ["alias/nope", "arn:aws:kms:eu-west-1:123456789012:alias/orders", "nope"] {
            assert_eq!(k.resolve(bad).unwrap_err().kind(), ErrorKind::KmsNotFound, "{bad}");
        }
        // The AWS-managed key was made, 0600.
        assert!(k.resolve(AWS_MANAGED_ALIAS).is_ok());
    }

    #[test]
    fn key_states_answer_the_kms_exceptions() {
        let m = b64().encode([1u8; 32]);
        let text = format!(
            "[[key]]\nid = \"{ID}\"\naliases = [\"alias/a\"]\nmaterial = \"{m}\"\nenabled = false\n\
             [[key]]\nid = \"{}\"\naliases = [\"alias/b\"]\nstate = \"PendingDeletion\"\n\
             [[key]]\nid = \"{}\"\naliases = [\"alias/c\"]\nmaterial = \"{m}\"\ndeny = true\n",
            ID.replace('1', "a"),
            ID.replace('1', "b")
        );
        let (k, _dir) = kms(&text);
        for (alias, kind) in [
            ("alias/a", ErrorKind::KmsDisabled),
            ("alias/b", ErrorKind::KmsInvalidState),
            ("alias/c", ErrorKind::KmsAccessDenied),
        ] {
            let key = k.resolve(alias).unwrap();
            assert_eq!(k.usable(key).unwrap_err().kind(), kind, "{alias}");
        }
    }

    #[test]
    fn managed_key_file_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = KeyringConfig::default();
        let a = Kms::load(&cfg, dir.path(), "us-east-1", "000000000000").unwrap();
        let path = dir.path().join("kms/aws-kinesis.toml");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let b = Kms::load(&cfg, dir.path(), "us-east-1", "000000000000").unwrap();
        assert_eq!(a.resolve(AWS_MANAGED_ALIAS).unwrap().id, b.resolve(AWS_MANAGED_ALIAS).unwrap().id);
        assert!(is_uuid(&a.resolve(AWS_MANAGED_ALIAS).unwrap().id));
    }

    fn stream(incarnation: u64, data_keys: Vec<DataKeyMeta>) -> StreamMeta {
        StreamMeta {
            incarnation,
            encryption_key_id: Some(ID.into()),
            encryption: EncryptionMeta { data_keys, changes_ms: Vec::new() },
            ..StreamMeta::for_test(&format!("s{incarnation}"), Vec::new())
        }
    }

    fn one_key() -> (Kms, tempfile::TempDir) {
        kms(&format!("[[key]]\nid = \"{ID}\"\nmaterial = \"{}\"\n", b64().encode([1u8; 32])))
    }

    #[test]
    fn a_damaged_wrapped_data_key_is_an_internal_failure_not_wrong_material() {
        let (k, _dir) = one_key();
        let master = k.resolve(ID).unwrap();
        let good = k.new_data_key(master, 7, 0, 0).unwrap();
        assert!(k.data_key(&stream(7, vec![good.clone()]), 0).is_ok(), "an undamaged key unwraps");
        let mut short = good.clone();
        short.wrapped = b64().encode(&b64().decode(&good.wrapped).unwrap()[..40]);
        let mut not_base64 = good.clone();
        not_base64.wrapped = "%%% not base64 %%%".into();
        for (incarnation, damaged) in [(8, short), (9, not_base64)] {
            let e = k.data_key(&stream(incarnation, vec![damaged]), 0).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InternalFailure, "{e}");
            let message = e.message().unwrap_or_default().to_string();
            assert!(message.contains("damaged") && !message.contains("material"), "{message}");
        }
    }

    #[test]
    fn the_data_key_cache_stays_bounded() {
        let (k, _dir) = one_key();
        let master = k.resolve(ID).unwrap();
        let first = stream(0, vec![k.new_data_key(master, 0, 0, 0).unwrap()]);
        k.data_key(&first, 0).unwrap();
        for incarnation in 1..(DATA_KEY_CACHE_MAX as u64 + 100) {
            let s = stream(incarnation, vec![k.new_data_key(master, incarnation, 0, 0).unwrap()]);
            k.data_key(&s, 0).unwrap();
            // The first stream stays in use: the least recently used ones go instead.
            k.data_key(&first, 0).unwrap();
            assert!(k.cache.lock().len() <= DATA_KEY_CACHE_MAX);
            assert!(k.cache.lock().entries.contains_key(&(0, 0)), "the key in use was evicted");
        }
        assert_eq!(k.cache.lock().len(), DATA_KEY_CACHE_MAX);
    }
}
