//! Verification of the access tokens issued by the account server (JWT, EdDSA).

use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use movan_protocol::{ErrorCode, ProtocolError, TokenClaims};

/// Checks a token's signature, `exp`, `iss` and `aud`. Cheap to share (`Arc`) across connection tasks.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

/// The token public key cannot be used (not to be confused with [`crate::keys::KeyError`], a session key).
#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    /// The file could not be read.
    #[error(
        "cannot read token public key {path}: {source} (start the account server once, or run `account-server keygen`, to create it)"
    )]
    Read {
        /// The key file.
        path: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 public key in PEM.
    #[error("token public key {path} is not an Ed25519 PEM public key: {source}")]
    Parse {
        /// The key file.
        path: String,
        /// The parser's reason.
        source: jsonwebtoken::errors::Error,
    },
}

/// Leeway on `exp`, in seconds, for clock skew between the services.
const LEEWAY_SECS: u64 = 5;

impl TokenVerifier {
    /// Loads the Ed25519 public key (PEM) at `path`.
    pub fn from_pem_file(path: &Path, issuer: &str, audience: &str) -> Result<Self, PublicKeyError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| PublicKeyError::Read { path: shown.clone(), source })?;
        Self::from_pem(&pem, issuer, audience).map_err(|source| PublicKeyError::Parse { path: shown, source })
    }

    /// Uses the Ed25519 public key in `pem`.
    pub fn from_pem(pem: &[u8], issuer: &str, audience: &str) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = DecodingKey::from_ed_pem(pem)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Ok(Self { key, validation })
    }

    /// The token's claims, or the error to send to the client.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, ProtocolError> {
        jsonwebtoken::decode::<TokenClaims>(token, &self.key, &self.validation).map(|data| data.claims).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => ProtocolError::new(
                    ErrorCode::TokenExpired,
                    "the token has expired; refresh it at the account server",
                ),
                _ => ProtocolError::new(ErrorCode::BadToken, format!("the token is not valid: {e}")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    use jsonwebtoken::{EncodingKey, Header};

    fn keys(seed: u8) -> (EncodingKey, String) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let private = sk.to_pkcs8_pem(LineEnding::LF).unwrap();
        let public = sk.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        (EncodingKey::from_ed_pem(private.as_bytes()).unwrap(), public)
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn token(key: &EncodingKey, iss: &str, aud: &str, exp: u64) -> String {
        let claims = TokenClaims {
            sub: "1001".into(),
            sid: "s1".into(),
            iss: iss.into(),
            aud: aud.into(),
            iat: now(),
            exp,
            name: "alice".into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, key).unwrap()
    }

    #[test]
    fn verifies_signature_expiry_issuer_and_audience() {
        let (sk, pk) = keys(1);
        let v = TokenVerifier::from_pem(pk.as_bytes(), "movan-account", "movan-sync").unwrap();
        let good = token(&sk, "movan-account", "movan-sync", now() + 60);
        assert_eq!(v.verify(&good).unwrap().sub, "1001");
        let code = |t: &str| v.verify(t).unwrap_err().code;
        assert_eq!(code(&token(&sk, "movan-account", "movan-sync", now() - 60)), ErrorCode::TokenExpired);
        assert_eq!(code(&token(&sk, "someone-else", "movan-sync", now() + 60)), ErrorCode::BadToken);
        assert_eq!(code(&token(&sk, "movan-account", "other-audience", now() + 60)), ErrorCode::BadToken);
        let (other_sk, _) = keys(2);
        assert_eq!(code(&token(&other_sk, "movan-account", "movan-sync", now() + 60)), ErrorCode::BadToken);
        assert_eq!(code("not.a.jwt"), ErrorCode::BadToken);
        assert_eq!(code(""), ErrorCode::BadToken);
        let mut tampered = good.clone().into_bytes();
        let mid = tampered.len() / 2;
        tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
        assert_eq!(code(std::str::from_utf8(&tampered).unwrap()), ErrorCode::BadToken);
    }

    #[test]
    fn missing_key_file_names_the_path_and_the_fix() {
        let e = TokenVerifier::from_pem_file(Path::new("/nonexistent/k.pem"), "i", "a").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/nonexistent/k.pem") && msg.contains("keygen"), "{msg}");
    }
}
