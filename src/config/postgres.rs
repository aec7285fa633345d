//! The PostgreSQL parts of `[store]` that `check` validates: the URL and the CA file.
//!
//! They live here, at the bottom of the house, so that configuration never imports the store;
//! the store's connection code uses the same two functions.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Parses `store.url` (a `postgres://` URL). The error says what is wrong without quoting the
/// URL (it may hold a password). `check` calls it too.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        // The client's messages name the option, never its value.
        match std::error::Error::source(&e) {
            Some(cause) => format!("is not a PostgreSQL URL profilegate can use: {e} ({cause})"),
            None => format!("is not a PostgreSQL URL profilegate can use: {e}"),
        }
    })?;
    if config.get_hosts().is_empty() {
        return Err("names no host".to_string());
    }
    Ok(config)
}

/// Reads `store.tls_ca_file`'s PEM: at least one certificate, each one valid.
pub fn parse_ca(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate list ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string());
    }
    let mut roots = rustls::RootCertStore::empty();
    let (_, refused) = roots.add_parsable_certificates(certs.iter().cloned());
    if refused > 0 {
        return Err(format!(
            "{refused} of its certificates cannot be used as a trust anchor"
        ));
    }
    Ok(certs)
}
