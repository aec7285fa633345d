//! The session's tokens at rest: the refresh token and the ID token are kept in the session
//! record (the store), sealed with AES-256-GCM under a key derived (HKDF-SHA256) from each
//! `session.secret`, the session id as associated data, so a record copied onto another session
//! does not open. The first secret seals; every configured secret opens (rotation).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// What the record's `tokens` hold, once opened.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTokens {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The last ID token (for `id_token_hint` at RP-initiated logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokens")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Seals and opens [`SessionTokens`].
pub struct TokenSealer {
    /// One key per configured secret, the sealing one first.
    keys: Vec<LessSafeKey>,
    random: SystemRandom,
}

/// HKDF's `info`: keys for this purpose only (the cookie key is derived differently).
const INFO: &[u8] = b"profilegate session tokens v1";

impl TokenSealer {
    /// Keys from `secrets` (`session.secret`, the first seals). Empty `secrets` is a
    /// configuration error caught before this (the key is required).
    pub fn new(secrets: &[Vec<u8>]) -> Self {
        let keys = secrets
            .iter()
            .map(|secret| {
                let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"profilegate").extract(secret);
                let mut bytes = [0u8; 32];
                prk.expand(&[INFO], &AES_256_GCM)
                    .and_then(|okm| okm.fill(&mut bytes))
                    .expect("HKDF output of the AEAD key length");
                LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("32-byte key"))
            })
            .collect();
        Self {
            keys,
            random: SystemRandom::new(),
        }
    }

    /// `tokens` sealed for session `sid`: nonce, then ciphertext and tag.
    pub fn seal(&self, sid: &str, tokens: &SessionTokens) -> Option<Vec<u8>> {
        let key = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut data = serde_json::to_vec(tokens).ok()?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(sid.as_bytes()),
            &mut data,
        )
        .ok()?;
        Some([&nonce[..], &data].concat())
    }

    /// The tokens sealed in `sealed` for `sid`, with any configured secret; `None` when none
    /// opens it (another session's, a dropped secret's, tampered).
    pub fn open(&self, sid: &str, sealed: &[u8]) -> Option<SessionTokens> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        self.keys.iter().find_map(|key| {
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut data = data.to_vec();
            let plain = key
                .open_in_place(nonce, Aad::from(sid.as_bytes()), &mut data)
                .ok()?;
            serde_json::from_slice(plain).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> SessionTokens {
        SessionTokens {
            refresh_token: Some("rt-secret".into()),
            id_token: Some("eyJ.id.token".into()),
        }
    }

    #[test]
    fn sealed_tokens_open_only_for_their_session_and_hide_their_text() {
        let sealer = TokenSealer::new(&[vec![7u8; 32]]);
        let sealed = sealer.seal("sid-1", &tokens()).expect("seals");
        assert!(!String::from_utf8_lossy(&sealed).contains("rt-secret"));
        assert_eq!(sealer.open("sid-1", &sealed), Some(tokens()));
        assert_eq!(sealer.open("sid-2", &sealed), None);
        let mut tampered = sealed.clone();
        *tampered.last_mut().expect("bytes") ^= 1;
        assert_eq!(sealer.open("sid-1", &tampered), None);
        assert!(!format!("{:?}", tokens()).contains("rt-secret"));
    }

    #[test]
    fn every_configured_secret_opens_and_the_first_seals() {
        let (old, new) = (vec![1u8; 32], vec![2u8; 32]);
        let before = TokenSealer::new(std::slice::from_ref(&old));
        let sealed_before = before.seal("s", &tokens()).expect("seals");
        let during = TokenSealer::new(&[new.clone(), old]);
        assert_eq!(during.open("s", &sealed_before), Some(tokens()));
        let sealed_during = during.seal("s", &tokens()).expect("seals");
        let after = TokenSealer::new(&[new]);
        assert_eq!(after.open("s", &sealed_during), Some(tokens()));
        assert_eq!(after.open("s", &sealed_before), None);
    }
}
