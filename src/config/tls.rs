//! `server.tls_cert_file` and `server.tls_key_file`: the two PEM files read into one rustls
//! [`CertifiedKey`], every failure named by its key. The config reader loads them once (so
//! `profilegate check` names a bad file); the listener's reloader (`server::tls`) loads them
//! again whenever they change.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::InconsistentKeys;

/// Largest certificate chain or key file read, in bytes (a chain of a few certificates is
/// under 10 KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The certificate chain and private key files of the TLS listener (both given, or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `server.tls_cert_file`: PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// `server.tls_key_file`: PEM private key (PKCS#8, RSA or SEC1) of that certificate.
    pub key_file: PathBuf,
}

/// Why the pair could not be loaded: the key (`tls_cert_file` or `tls_key_file`) and a
/// message naming the file. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFileError {
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server.{}: {}", self.key, self.message)
    }
}

impl std::error::Error for TlsFileError {}

const CERT_KEY: &str = "tls_cert_file";
const KEY_KEY: &str = "tls_key_file";

impl TlsFiles {
    /// Reads, parses and pairs both files: the chain, the key (ring must support it) and the
    /// key matching the first certificate's public key.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsFileError> {
        let cert_pem = read_bounded(CERT_KEY, &self.cert_file)?;
        let key_pem = read_bounded(KEY_KEY, &self.key_file)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                error(
                    CERT_KEY,
                    format!("{} is not valid PEM ({e})", self.cert_file.display()),
                )
            })?;
        if chain.is_empty() {
            return Err(error(
                CERT_KEY,
                format!(
                    "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
                    self.cert_file.display()
                ),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            let why = match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "holds no private key (-----BEGIN PRIVATE KEY-----, RSA or EC)".to_owned()
                }
                other => format!("is not a valid PEM private key ({other})"),
            };
            error(KEY_KEY, format!("{} {why}", self.key_file.display()))
        })?;
        let signing = any_supported_type(&key).map_err(|e| {
            error(
                KEY_KEY,
                format!(
                    "{} is not a usable private key ({e}); use RSA, ECDSA P-256/P-384 or Ed25519",
                    self.key_file.display()
                ),
            )
        })?;
        let pair = CertifiedKey::new(chain, signing);
        match pair.keys_match() {
            // A key type whose public key rustls cannot derive: the handshake will tell.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(error(
                    KEY_KEY,
                    format!(
                        "{} does not match the certificate in {} (the first certificate must be the server's own)",
                        self.key_file.display(),
                        self.cert_file.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(error(
                    CERT_KEY,
                    format!(
                        "{} does not start with a valid X.509 certificate ({e})",
                        self.cert_file.display()
                    ),
                ))
            }
        }
        Ok(Arc::new(pair))
    }
}

fn error(key: &'static str, message: String) -> TlsFileError {
    TlsFileError { key, message }
}

/// The file's bytes, at most [`MAX_PEM_BYTES`] (checked while reading: a device reports 0).
fn read_bounded(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    let mut content = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PEM_BYTES + 1).read_to_end(&mut content))
        .map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
    if content.len() as u64 > MAX_PEM_BYTES {
        return Err(error(
            key,
            format!(
                "{} is larger than {MAX_PEM_BYTES} bytes: not a PEM file",
                path.display()
            ),
        ));
    }
    Ok(content)
}
