//! The TLS listener's settings (`server.tls_cert_file`, `server.tls_key_file`): the rustls
//! [`ServerConfig`] every worker hands its accepted connections to (TLS 1.2 and 1.3 only, ALPN
//! `h2` then `http/1.1`), and the certificate behind it, replaced without a restart.
//!
//! The certificate sits behind an atomic pointer ([`CurrentCertificate`]); a handshake reads
//! the one current when it starts. One watcher thread per process polls both files (modified
//! time, length, contents); when either changes it loads the pair again (`TlsFiles::load`: parsed and
//! the key matched to the certificate) and swaps it in. A pair that does not load keeps the old
//! one serving and is logged once per change. Connections already open keep their session.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::{TlsFileError, TlsFiles};

/// How often the watcher looks at the files.
const POLL: Duration = Duration::from_secs(1);

/// The certificate handshakes use now: the last pair that loaded.
#[derive(Debug)]
pub struct CurrentCertificate {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Loads the pair and makes the listener's rustls configuration, then starts the thread that
/// reloads the pair when the files change (it ends once no configuration uses it any more).
pub fn listener_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsFileError> {
    let first = files.load()?;
    let resolver = Arc::new(CurrentCertificate {
        current: ArcSwap::new(first),
    });
    let config = server_config(resolver.clone()).map_err(|e| TlsFileError {
        key: "tls_cert_file",
        message: format!("the TLS settings were refused: {e}"),
    })?;
    spawn_watcher(files.clone(), Arc::downgrade(&resolver)).map_err(|e| TlsFileError {
        key: "tls_cert_file",
        message: format!("cannot start the certificate watcher: {e}"),
    })?;
    Ok(config)
}

fn server_config(resolver: Arc<CurrentCertificate>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What the watcher compares, per file: its modified time, length and a hash of its bytes
/// (`None`: unreadable). The bytes count too: a rewrite within the file system's timestamp
/// granularity that keeps the length is still seen.
type Fingerprint = [Option<(SystemTime, u64, u64)>; 2];

/// Files larger than this are not hashed (they will not load either; their time and length
/// still count).
const MAX_HASHED: u64 = 1 << 20;

fn fingerprint(files: &TlsFiles) -> Fingerprint {
    use std::hash::{Hash, Hasher};
    let of = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        if meta.len() <= MAX_HASHED {
            std::fs::read(path).ok()?.hash(&mut hasher);
        }
        Some((meta.modified().ok()?, meta.len(), hasher.finish()))
    };
    [of(&files.cert_file), of(&files.key_file)]
}

fn spawn_watcher(files: TlsFiles, resolver: Weak<CurrentCertificate>) -> std::io::Result<()> {
    let mut seen = fingerprint(&files);
    std::thread::Builder::new()
        .name("tls-reload".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            let Some(resolver) = resolver.upgrade() else {
                return;
            };
            let now = fingerprint(&files);
            if now == seen {
                continue;
            }
            seen = now;
            match files.load() {
                Ok(pair) => {
                    resolver.current.store(pair);
                    tracing::info!(
                        cert_file = %files.cert_file.display(),
                        key_file = %files.key_file.display(),
                        "TLS certificate reloaded: new connections use it"
                    );
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "TLS certificate not reloaded: the files changed but do not load; the previous certificate keeps serving"
                ),
            }
        })
        .map(drop)
}
