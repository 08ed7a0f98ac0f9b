//! The secret shared with the sync servers (`rpc.secret_path`): both ends of an RPC connection prove they know it.
//!
//! The file holds at least 32 random bytes, standard base64 (with padding) on one line. The account server creates it
//! (mode 0600) on its first start or with `account-server keygen`; the sync servers only read it. The secret both
//! ends use is that base64 text, without surrounding whitespace.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use rand::rngs::OsRng;

/// Length of a generated secret, and the least a secret file must hold, bytes.
pub const SECRET_LEN: usize = 32;

/// The shared secret: the base64 text of the file, trimmed. Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct RpcSecret(String);

impl RpcSecret {
    /// The secret as `movan_rpc::RpcConfig::secret` takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RpcSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RpcSecret(<redacted>)")
    }
}

/// The secret file cannot be created or used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// `rpc.secret_path`.
        path: PathBuf,
        /// The I/O failure.
        source: io::Error,
    },
    /// The file or its directory could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// `rpc.secret_path` or its directory.
        path: PathBuf,
        /// The I/O failure.
        source: io::Error,
    },
    /// The file is not base64 of at least [`SECRET_LEN`] bytes.
    #[error("{}: not an RPC secret (standard base64 of at least {SECRET_LEN} bytes): {message}", path.display())]
    Invalid {
        /// `rpc.secret_path`.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Whether [`ensure_rpc_secret`] found the file or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretStatus {
    /// The file existed and is valid.
    Existing,
    /// There was no file: a new secret was generated and written.
    Created,
}

/// Reads the secret at `path`, generating it first (mode 0600) if the file is missing.
pub fn ensure_rpc_secret(path: &Path) -> Result<(RpcSecret, SecretStatus), SecretError> {
    match fs::read_to_string(path) {
        Ok(text) => return parse(path, &text).map(|secret| (secret, SecretStatus::Existing)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(SecretError::Read { path: path.to_owned(), source }),
    }
    match create(path)? {
        Some(secret) => Ok((secret, SecretStatus::Created)),
        // Another process created it first: use theirs.
        None => ensure_rpc_secret(path),
    }
}

fn parse(path: &Path, text: &str) -> Result<RpcSecret, SecretError> {
    let invalid = |message: String| SecretError::Invalid { path: path.to_owned(), message };
    let text = text.trim();
    let bytes = STANDARD.decode(text).map_err(|e| invalid(e.to_string()))?;
    if bytes.len() < SECRET_LEN {
        return Err(invalid(format!("only {} bytes", bytes.len())));
    }
    Ok(RpcSecret(text.to_owned()))
}

/// Writes a new secret to `path` (mode 0600), or returns `None` if the file appeared meanwhile.
fn create(path: &Path) -> Result<Option<RpcSecret>, SecretError> {
    let write_error = |path: &Path, source| SecretError::Write { path: path.to_owned(), source };
    let mut bytes = vec![0u8; SECRET_LEN];
    OsRng.fill_bytes(&mut bytes);
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(write_error(path, e)),
    };
    let text = STANDARD.encode(&bytes);
    file.write_all(format!("{text}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(|e| write_error(path, e))?;
    Ok(Some(RpcSecret(text)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn created_once_with_mode_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/rpc_secret");
        let (first, status) = ensure_rpc_secret(&path).unwrap();
        assert_eq!(status, SecretStatus::Created);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", first.as_str()));
        assert_eq!(STANDARD.decode(first.as_str()).unwrap().len(), SECRET_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (again, status) = ensure_rpc_secret(&path).unwrap();
        assert_eq!((again, status), (first.clone(), SecretStatus::Existing));
        assert_eq!(format!("{first:?}"), "RpcSecret(<redacted>)");
    }

    #[test]
    fn short_or_garbled_secrets_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rpc_secret");
        fs::write(&path, STANDARD.encode([7u8; 16])).unwrap();
        let e = ensure_rpc_secret(&path).unwrap_err().to_string();
        assert!(e.contains("rpc_secret: not an RPC secret") && e.contains("only 16 bytes"), "{e}");
        fs::write(&path, "not base64!").unwrap();
        assert!(matches!(ensure_rpc_secret(&path), Err(SecretError::Invalid { .. })));
        fs::write(&path, format!("  {}\n\n", STANDARD.encode([7u8; 48]))).unwrap();
        assert_eq!(ensure_rpc_secret(&path).unwrap().0.as_str(), STANDARD.encode([7u8; 48]));
    }
}
