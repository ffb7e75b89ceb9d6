//! The secrets of a provisioning attempt: the boot nonce, the bearer token and the configuration
//! nonce (inspector contract §1).
//!
//! They are *derived*, not stored: HMAC-SHA256 over a per-installation key (the Secret
//! `beskar7-token-key` in the operator namespace) and the attempt's identity (the host's uid and
//! the attempt id in `status.attempt.id`). That lets any replica, at any time, re-render the
//! byte-identical boot script the contract requires for iPXE retries, while `status` holds only
//! SHA-256 hashes. Comparisons against those hashes are constant-time.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, PostParams};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};

use crate::api::{Attempt, AttemptMode};

/// The Secret (in the operator namespace) holding the key attempt secrets are derived from.
pub const TOKEN_KEY_SECRET: &str = "beskar7-token-key";
/// The key of that Secret's data holding the 32 key bytes.
pub const TOKEN_KEY_FIELD: &str = "key";
/// Length of the token key in bytes.
pub const TOKEN_KEY_LEN: usize = 32;

/// Errors of the token key and of minting.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the system random number generator failed")]
    Random,
    #[error(
        "Secret {namespace}/{name} has no usable key: data.{field} must hold exactly {len} bytes (found {found}); delete the Secret to have a new key generated (live attempts then fail and are retried)"
    )]
    BadKey {
        namespace: String,
        name: String,
        field: &'static str,
        len: usize,
        found: usize,
    },
    #[error(
        "cannot read or create Secret {namespace}/{name}: {}",
        crate::kube_errors::describe(source)
    )]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The per-installation key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct TokenKey(hmac::Key);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    /// A key from its bytes (exactly [`TOKEN_KEY_LEN`]); `None` otherwise.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == TOKEN_KEY_LEN).then(|| TokenKey(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// Fresh random key bytes.
    pub fn generate_bytes() -> Result<[u8; TOKEN_KEY_LEN], TokenError> {
        let mut bytes = [0u8; TOKEN_KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenError::Random)?;
        Ok(bytes)
    }

    /// A fresh random key (tests; the manager loads the installation's key with
    /// [`load_or_create_token_key`]).
    pub fn generate() -> Result<Self, TokenError> {
        let bytes = Self::generate_bytes()?;
        Ok(Self::from_bytes(&bytes).expect("the length is right"))
    }

    /// One derived secret: base64url (no padding) of HMAC-SHA256(key, purpose ‖ uid ‖ attempt id),
    /// 43 characters, 256 pseudo-random bits. NUL separators keep the fields apart.
    fn derive(&self, purpose: &str, host_uid: &str, attempt_id: &str) -> SecretString {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in ["beskar7-attempt-v1", purpose, host_uid, attempt_id] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        SecretString(URL_SAFE_NO_PAD.encode(ctx.sign().as_ref()))
    }

    /// The three secrets of an attempt, re-derivable at any time from the same inputs.
    pub fn secrets(&self, host_uid: &str, attempt_id: &str) -> AttemptSecrets {
        AttemptSecrets {
            boot_nonce: self.derive("boot-nonce", host_uid, attempt_id),
            token: self.derive("bearer-token", host_uid, attempt_id),
            config_nonce: self.derive("config-nonce", host_uid, attempt_id),
        }
    }
}

/// A secret string: `Debug` and `Display` show `<redacted>`; read it with [`Self::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }
    /// The secret itself: only for the boot script and the test client.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Hex SHA-256, as stored in status.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The secrets of one attempt.
#[derive(Clone, Debug)]
pub struct AttemptSecrets {
    /// Gates `GET /api/v1/boot/...` (handed out by the first stage).
    pub boot_nonce: SecretString,
    /// The bearer token of every agent callback (on the rendered kernel line).
    pub token: SecretString,
    /// Gates the one-shot `GET /api/v1/config/...` (Kexec handoff).
    pub config_nonce: SecretString,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `candidate`'s SHA-256 equals the stored hex hash, in time independent of where they
/// differ. A malformed stored hash never matches.
pub fn matches_hash(candidate: &str, stored_hex: &str) -> bool {
    let computed = sha256_hex(candidate.as_bytes());
    constant_time_eq(
        computed.as_bytes(),
        stored_hex.to_ascii_lowercase().as_bytes(),
    )
}

/// Constant-time equality of two byte strings (the length is not secret: hashes are 64 chars).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// How long an attempt's secrets live.
#[derive(Clone, Copy, Debug)]
pub struct AttemptLifetimes {
    /// The boot nonce (contract: ~10 min).
    pub nonce: Duration,
    /// The bearer token (contract: ~60 min; at least the inspection plus deployment timeouts).
    pub token: Duration,
}

impl Default for AttemptLifetimes {
    fn default() -> Self {
        AttemptLifetimes {
            nonce: Duration::from_secs(10 * 60),
            token: Duration::from_secs(60 * 60),
        }
    }
}

/// Starts an attempt for the host with uid `host_uid`: a fresh random id, the start and expiry
/// times, and the SHA-256 hashes of its secrets. The host controller writes the result to
/// `status.attempt` (replacing the previous attempt); the callback re-derives the secrets from
/// the id when it renders the boot script. A Kexec attempt also gets a configuration nonce.
pub fn mint_attempt(
    key: &TokenKey,
    host_uid: &str,
    mode: AttemptMode,
    with_config_nonce: bool,
    now: jiff::Timestamp,
    lifetimes: AttemptLifetimes,
) -> Result<Attempt, TokenError> {
    let mut id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| TokenError::Random)?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secrets = key.secrets(host_uid, &id);
    let after = |d: Duration| {
        Time(now + jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX))
    };
    Ok(Attempt {
        id: Some(id),
        mode: Some(mode),
        started_at: Some(Time(now)),
        expires_at: Some(after(lifetimes.token)),
        nonce_expires_at: Some(after(lifetimes.nonce)),
        nonce_hash: Some(secrets.boot_nonce.hash()),
        token_hash: Some(secrets.token.hash()),
        config_nonce_hash: with_config_nonce.then(|| secrets.config_nonce.hash()),
        ..Attempt::default()
    })
}

/// Reads the installation's token key from Secret [`TOKEN_KEY_SECRET`] in `namespace`, creating
/// it with a random key when absent. Replicas racing to create it all end up with the winner's.
pub async fn load_or_create_token_key(
    client: &kube::Client,
    namespace: &str,
) -> Result<TokenKey, TokenError> {
    let api: Api<KubeSecret> = Api::namespaced(client.clone(), namespace);
    let kube_err = |source| TokenError::Kube {
        namespace: namespace.into(),
        name: TOKEN_KEY_SECRET.into(),
        source,
    };
    let secret = match api.get_opt(TOKEN_KEY_SECRET).await.map_err(kube_err)? {
        Some(s) => s,
        None => {
            let bytes = TokenKey::generate_bytes()?;
            let secret = KubeSecret {
                metadata: ObjectMeta {
                    name: Some(TOKEN_KEY_SECRET.into()),
                    namespace: Some(namespace.into()),
                    labels: Some(
                        [(
                            "app.kubernetes.io/managed-by".to_string(),
                            "beskar7".to_string(),
                        )]
                        .into(),
                    ),
                    ..ObjectMeta::default()
                },
                type_: Some("Opaque".into()),
                data: Some([(TOKEN_KEY_FIELD.to_string(), ByteString(bytes.to_vec()))].into()),
                ..KubeSecret::default()
            };
            match api.create(&PostParams::default(), &secret).await {
                Ok(s) => s,
                // Another replica created it first: use the winner's key.
                Err(kube::Error::Api(s)) if s.is_already_exists() => {
                    api.get(TOKEN_KEY_SECRET).await.map_err(kube_err)?
                }
                Err(e) => return Err(kube_err(e)),
            }
        }
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TOKEN_KEY_FIELD))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    TokenKey::from_bytes(&bytes).ok_or(TokenError::BadKey {
        namespace: namespace.into(),
        name: TOKEN_KEY_SECRET.into(),
        field: TOKEN_KEY_FIELD,
        len: TOKEN_KEY_LEN,
        found: bytes.len(),
    })
}

/// Base64 (standard, padded) of `bytes`: the encoding of `beskar7.ca`.
pub fn base64_standard(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_secrets_are_stable_distinct_and_43_chars() {
        let key = TokenKey::from_bytes(&[7u8; 32]).unwrap();
        let a = key.secrets("uid-1", "attempt-1");
        let b = key.secrets("uid-1", "attempt-1");
        assert_eq!(a.token, b.token);
        assert_eq!(a.boot_nonce, b.boot_nonce);
        assert_ne!(a.token, a.boot_nonce);
        assert_ne!(a.token, a.config_nonce);
        assert_eq!(a.token.expose().len(), 43);
        // Another attempt, another host or another key: other secrets.
        assert_ne!(a.token, key.secrets("uid-1", "attempt-2").token);
        assert_ne!(a.token, key.secrets("uid-2", "attempt-1").token);
        let other = TokenKey::from_bytes(&[8u8; 32]).unwrap();
        assert_ne!(a.token, other.secrets("uid-1", "attempt-1").token);
        assert_eq!(format!("{a:?}").matches("<redacted>").count(), 3);
    }

    #[test]
    fn hashes_match_only_their_secret() {
        let s = SecretString::new("abc");
        assert_eq!(
            s.hash(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(matches_hash("abc", &s.hash()));
        assert!(matches_hash("abc", &s.hash().to_uppercase()));
        assert!(!matches_hash("abd", &s.hash()));
        assert!(!matches_hash("abc", "not-a-hash"));
        assert!(!matches_hash("abc", ""));
    }

    #[test]
    fn minted_attempt_holds_hashes_of_rederivable_secrets() {
        let key = TokenKey::generate().unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let a = mint_attempt(
            &key,
            "uid",
            AttemptMode::Provision,
            true,
            now,
            AttemptLifetimes::default(),
        )
        .unwrap();
        let secrets = key.secrets("uid", a.id.as_deref().unwrap());
        assert!(matches_hash(
            secrets.token.expose(),
            a.token_hash.as_deref().unwrap()
        ));
        assert!(matches_hash(
            secrets.boot_nonce.expose(),
            a.nonce_hash.as_deref().unwrap()
        ));
        assert!(matches_hash(
            secrets.config_nonce.expose(),
            a.config_nonce_hash.as_deref().unwrap()
        ));
        assert_eq!(a.started_at, Some(Time(now)));
        assert_eq!(
            a.nonce_expires_at.unwrap().0.as_second(),
            now.as_second() + 600
        );
        assert_eq!(a.expires_at.unwrap().0.as_second(), now.as_second() + 3600);
        let b = mint_attempt(
            &key,
            "uid",
            AttemptMode::Clean,
            false,
            now,
            AttemptLifetimes::default(),
        )
        .unwrap();
        assert_ne!(a.id, b.id, "every attempt gets fresh secrets");
        assert_eq!(b.config_nonce_hash, None);
    }
}
