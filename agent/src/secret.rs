//! Secrets from the kernel command line: kept out of `Debug`, errors and logs, zeroed on drop.

use std::fmt;

/// The bearer token of `beskar7.token`. Its `Debug` never shows the value, it has no `Display`,
/// and its bytes are overwritten when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Vec<u8>);

impl Token {
    /// Wraps an already validated token (base64url characters only).
    pub(crate) fn new(value: &str) -> Self {
        Self(value.as_bytes().to_vec())
    }

    /// The token, for the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        // Only ASCII is ever stored (see `cmdline`), so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        wipe_bytes(&mut self.0);
    }
}

/// Secret bytes (the bootstrap data): `Debug` shows only the length, overwritten when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes, for the handoff that writes them and nothing else.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe_bytes(&mut self.0);
    }
}

/// Overwrites a string that held secrets (the raw kernel command line) and drops it.
pub fn wipe(text: String) {
    let mut bytes = text.into_bytes();
    wipe_bytes(&mut bytes);
}

fn wipe_bytes(bytes: &mut [u8]) {
    bytes.iter_mut().for_each(|b| *b = 0);
    // Keep the writes from being optimised away as dead stores.
    std::hint::black_box(&*bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_bytes() {
        let data = SecretBytes::new(b"join-token".to_vec());
        assert_eq!(format!("{data:?}"), "SecretBytes(<10 bytes redacted>)");
        assert_eq!(data.expose(), b"join-token");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::new("s3cr3t-value");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert_eq!(token.expose(), "s3cr3t-value");
    }
}
