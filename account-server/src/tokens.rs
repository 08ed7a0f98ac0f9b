//! Access tokens (EdDSA JWTs carrying [`TokenClaims`]), the Ed25519 key pair that signs them, and the random
//! refresh tokens and session ids.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use movan_protocol::TokenClaims;
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};
use tracing::warn;

use crate::config::TokenSection;

/// The key pair files cannot be created or used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        source: io::Error,
    },
    /// A key file or its directory could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        source: io::Error,
    },
    /// A key file does not hold the expected kind of key.
    #[error("{}: not an Ed25519 {kind}: {message}", path.display())]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// `private key (PKCS#8 PEM)` or `public key (SPKI PEM)`.
        kind: &'static str,
        /// The parser's explanation.
        message: String,
    },
    /// The public key file belongs to another private key, so the sync server would reject every token.
    #[error("{}: does not match the private key in {}", public.display(), private.display())]
    Mismatch {
        /// The private key file.
        private: PathBuf,
        /// The public key file.
        public: PathBuf,
    },
}

/// What [`ensure_key_pair`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairStatus {
    /// Both files existed and match.
    Existing,
    /// The private key existed; the missing public key was derived from it and written.
    PublicKeyWritten,
    /// There was no private key: a new pair was generated and written.
    Created,
}

/// Makes sure the Ed25519 key pair exists: generates it if the private key is missing (the private key file gets
/// mode 0600), writes the public key if only it is missing, and checks that an existing pair matches.
pub fn ensure_key_pair(private_path: &Path, public_path: &Path) -> Result<KeyPairStatus, KeyError> {
    let signing = match fs::read_to_string(private_path) {
        Ok(pem) => parse_private_key(private_path, &pem)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => match create_private_key(private_path)? {
            Some(signing) => {
                write_public_key(public_path, &signing.verifying_key())?;
                return Ok(KeyPairStatus::Created);
            }
            // Another process created it first: use theirs.
            None => return ensure_key_pair(private_path, public_path),
        },
        Err(source) => {
            return Err(KeyError::Read { path: private_path.to_owned(), source });
        }
    };
    warn_if_readable_by_others(private_path);
    let verifying = signing.verifying_key();
    match fs::read_to_string(public_path) {
        Ok(pem) if parse_public_key(public_path, &pem)? == verifying => Ok(KeyPairStatus::Existing),
        Ok(_) => Err(KeyError::Mismatch { private: private_path.to_owned(), public: public_path.to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            write_public_key(public_path, &verifying)?;
            Ok(KeyPairStatus::PublicKeyWritten)
        }
        Err(source) => Err(KeyError::Read { path: public_path.to_owned(), source }),
    }
}

/// Errors of [`TokenIssuer::issue`] and [`TokenIssuer::verify`].
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, wrong issuer or audience, malformed token, or a signing failure.
    #[error("jwt: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
}

/// Signs access tokens and verifies the ones presented as `Authorization: Bearer`.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl_secs: u64,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Makes sure the key pair of `config` exists (see [`ensure_key_pair`]) and loads it.
    pub fn load(config: &TokenSection) -> Result<Self, KeyError> {
        ensure_key_pair(&config.private_key_path, &config.public_key_path)?;
        let (private, public) = (&config.private_key_path, &config.public_key_path);
        let read = |path: &Path| fs::read(path).map_err(|source| KeyError::Read { path: path.to_owned(), source });
        let invalid = |path: &Path, kind, e: jsonwebtoken::errors::Error| KeyError::Invalid {
            path: path.to_owned(),
            kind,
            message: e.to_string(),
        };
        let encoding = EncodingKey::from_ed_pem(&read(private)?).map_err(|e| invalid(private, PRIVATE_KIND, e))?;
        let decoding = DecodingKey::from_ed_pem(&read(public)?).map_err(|e| invalid(public, PUBLIC_KIND, e))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked against the server's clock in `verify`, which tests can control.
        validation.validate_exp = false;
        Ok(Self {
            encoding,
            decoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl_secs: config.access_ttl_secs,
        })
    }

    /// Lifetime of the access tokens this issues, seconds.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// A signed access token for user `uid` (`name`) in session `sid`, issued at `now` (Unix seconds).
    pub fn issue(&self, uid: &str, sid: &str, name: &str, now: u64) -> Result<String, TokenError> {
        let claims = TokenClaims {
            sub: uid.to_owned(),
            sid: sid.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.access_ttl_secs,
            name: name.to_owned(),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)?)
    }

    /// The claims of `token` if it is signed by this key, for this issuer and audience, and unexpired at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<TokenClaims, TokenError> {
        let claims = jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &self.validation)?.claims;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new refresh token: 32 random bytes, base64url without padding.
pub fn new_refresh_token() -> String {
    random_base64::<32>()
}

/// What the store keeps of a refresh token: its SHA-256, so a leaked database does not leak usable tokens.
pub fn refresh_token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new session id: 16 random bytes, base64url without padding.
pub fn new_session_id() -> String {
    random_base64::<16>()
}

const PRIVATE_KIND: &str = "private key (PKCS#8 PEM)";
const PUBLIC_KIND: &str = "public key (SPKI PEM)";

fn random_base64<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parse_private_key(path: &Path, pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::Invalid {
        path: path.to_owned(),
        kind: PRIVATE_KIND,
        message: e.to_string(),
    })
}

fn parse_public_key(path: &Path, pem: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|e| KeyError::Invalid {
        path: path.to_owned(),
        kind: PUBLIC_KIND,
        message: e.to_string(),
    })
}

/// Generates a key and writes it to `path` (mode 0600), or returns `None` if the file appeared meanwhile.
fn create_private_key(path: &Path) -> Result<Option<SigningKey>, KeyError> {
    let write_error = |source| KeyError::Write { path: path.to_owned(), source };
    let signing = SigningKey::generate(&mut OsRng);
    let pem = signing.to_pkcs8_pem(LineEnding::LF).map_err(|e| write_error(io::Error::other(e.to_string())))?;
    create_parent(path)?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(write_error(e)),
    };
    file.write_all(pem.as_bytes()).and_then(|()| file.sync_all()).map_err(write_error)?;
    Ok(Some(signing))
}

/// Writes the public key next to a temporary name first, so a reader never sees half a file.
fn write_public_key(path: &Path, key: &VerifyingKey) -> Result<(), KeyError> {
    let write_error = |source| KeyError::Write { path: path.to_owned(), source };
    let pem = key.to_public_key_pem(LineEnding::LF).map_err(|e| write_error(io::Error::other(e.to_string())))?;
    create_parent(path)?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".tmp{}", std::process::id()));
    fs::write(&temp, pem).and_then(|()| fs::rename(&temp, path)).map_err(write_error)
}

fn create_parent(path: &Path) -> Result<(), KeyError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            fs::create_dir_all(dir).map_err(|source| KeyError::Write { path: dir.to_owned(), source })
        }
        _ => Ok(()),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o077 != 0 {
            warn!(path = %path.display(), "private key file is accessible to other users; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(dir: &Path) -> TokenSection {
        TokenSection {
            private_key_path: dir.join("keys/private.pem"),
            public_key_path: dir.join("keys/public.pem"),
            ..TokenSection::default()
        }
    }

    #[test]
    fn key_pair_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        assert_eq!(ensure_key_pair(&c.private_key_path, &c.public_key_path).unwrap(), KeyPairStatus::Created);
        let public = fs::read_to_string(&c.public_key_path).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&c.private_key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(ensure_key_pair(&c.private_key_path, &c.public_key_path).unwrap(), KeyPairStatus::Existing);
        assert_eq!(fs::read_to_string(&c.public_key_path).unwrap(), public);

        fs::remove_file(&c.public_key_path).unwrap();
        let status = ensure_key_pair(&c.private_key_path, &c.public_key_path).unwrap();
        assert_eq!(status, KeyPairStatus::PublicKeyWritten);
        assert_eq!(fs::read_to_string(&c.public_key_path).unwrap(), public);
    }

    #[test]
    fn bad_or_mismatched_keys_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        ensure_key_pair(&c.private_key_path, &c.public_key_path).unwrap();
        let other = dir.path().join("other.pem");
        ensure_key_pair(&other, &dir.path().join("other.pub.pem")).unwrap();
        fs::copy(dir.path().join("other.pub.pem"), &c.public_key_path).unwrap();
        let e = ensure_key_pair(&c.private_key_path, &c.public_key_path).unwrap_err().to_string();
        assert!(e.contains("public.pem: does not match the private key"), "{e}");

        fs::write(&c.private_key_path, "garbage").unwrap();
        let e = ensure_key_pair(&c.private_key_path, &c.public_key_path).unwrap_err().to_string();
        assert!(e.contains("private.pem: not an Ed25519 private key"), "{e}");
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = TokenIssuer::load(&config(dir.path())).unwrap();
        let token = issuer.issue("1001", "sid", "alice", 1_000).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        let claims = issuer.verify(&token, 1_000).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str(), claims.name.as_str()), ("1001", "sid", "alice"));
        assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("movan-account", "movan-sync"));
        assert_eq!((claims.iat, claims.exp), (1_000, 1_000 + 3600));
        assert!(matches!(issuer.verify(&token, 1_000 + 3600), Err(TokenError::Expired)));
        assert!(issuer.verify(&format!("{token}x"), 1_000).is_err());

        let other_audience = TokenSection { audience: "elsewhere".into(), ..config(dir.path()) };
        let foreign = TokenIssuer::load(&other_audience).unwrap().issue("1001", "sid", "alice", 1_000).unwrap();
        assert!(issuer.verify(&foreign, 1_000).is_err());
    }

    #[test]
    fn random_tokens_have_the_documented_shape() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(new_session_id().len(), 22);
        assert_eq!(refresh_token_digest(&a), refresh_token_digest(&a));
        assert_ne!(refresh_token_digest(&a), refresh_token_digest(&b));
    }
}
