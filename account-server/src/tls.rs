//! HTTPS for the HTTP listener: the certificate chain and private key of `account.tls_cert_path` and
//! `account.tls_key_path` (PEM), served with rustls on its `ring` provider.
//!
//! Login answers carry passwords and session keys, so the HTTP listener should be HTTPS unless it is reachable from
//! this machine only ([`is_loopback`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// A loaded certificate chain and key, ready to serve HTTPS. Cheap to clone; `Debug` shows no key material.
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) acceptor: TlsAcceptor,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// The certificate or key cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The certificate or key file.
        path: PathBuf,
        /// The I/O failure.
        source: io::Error,
    },
    /// The certificate file holds no PEM certificate, or a malformed one.
    #[error("{}: not a PEM certificate chain: {message}", path.display())]
    Certificate {
        /// `account.tls_cert_path`.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1), or a malformed one.
    #[error("{}: not a PEM private key: {message}", path.display())]
    Key {
        /// `account.tls_key_path`.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair, e.g. a key that does not match the certificate or an unsupported key type.
    #[error("{} and {}: {source}", cert.display(), key.display())]
    Rejected {
        /// `account.tls_cert_path`.
        cert: PathBuf,
        /// `account.tls_key_path`.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

impl TlsConfig {
    /// Reads the certificate chain (leaf first) and the private key, and checks that they match. Offers HTTP/2 and
    /// HTTP/1.1 by ALPN.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source });
        let (cert_pem, key_pem) = (read(cert_path)?, read(key_path)?);
        let cert_error = |message: String| TlsError::Certificate { path: cert_path.to_owned(), message };
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_error(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_error("no \"BEGIN CERTIFICATE\" block".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::Key { path: key_path.to_owned(), message: e.to_string() })?;
        let rejected = |source| TlsError::Rejected { cert: cert_path.to_owned(), key: key_path.to_owned(), source };
        // An explicit provider: the process-wide default would depend on which rustls features the build unified.
        let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(rejected)?;
        // HTTP/1.1 only: the listener's header and idle timeouts are HTTP/1.1's (src/listener.rs).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}

/// Whether `addr` is reachable from this machine only (127.0.0.0/8 or ::1), where plain HTTP is acceptable.
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_loopback_addresses_count_as_local() {
        for local in ["127.0.0.1:1", "127.9.8.7:1", "[::1]:1"] {
            assert!(is_loopback(local.parse().unwrap()), "{local}");
        }
        for remote in ["0.0.0.0:1", "[::]:1", "10.0.0.1:1", "[::ffff:127.0.0.1]:1", "192.168.1.2:1"] {
            assert!(!is_loopback(remote.parse().unwrap()), "{remote}");
        }
    }

    #[test]
    fn a_matching_pair_loads_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        TlsConfig::load(&cert_path, &key_path).unwrap();

        let missing = dir.path().join("missing.pem");
        let e = TlsConfig::load(&missing, &key_path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read", missing.display())), "{e}");
        let e = TlsConfig::load(&key_path, &key_path).unwrap_err().to_string();
        assert!(e.contains("key.pem: not a PEM certificate chain"), "{e}");
        let e = TlsConfig::load(&cert_path, &cert_path).unwrap_err().to_string();
        assert!(e.contains("cert.pem: not a PEM private key"), "{e}");

        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other_key = dir.path().join("other.pem");
        std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
        let e = TlsConfig::load(&cert_path, &other_key).unwrap_err().to_string();
        assert!(e.contains("cert.pem and ") && e.contains("other.pem: "), "{e}");
    }
}
