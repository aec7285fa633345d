//! `[store]`: the metadata store's backend (sled or PostgreSQL) and the profile cache size
//! ([`StoreConfig`]), and the code that reads them. The PostgreSQL URL and CA file are checked
//! with [`super::postgres`], the functions the store connects with.

use std::path::PathBuf;

use super::postgres;
use super::reader::SectionReader;
use super::secret::Secret;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `store.backend` and what it needs.
    pub backend: StoreBackend,
    /// `store.profile_cache_users`: how many users' profiles (with their `X-Profile-*` headers
    /// and last JWT, under 1 KiB each) the signed-in hot path keeps in memory; a miss reads the
    /// store. 0 turns the cache off. Default 10,000.
    pub profile_cache_users: usize,
}

/// The default of `store.profile_cache_users`.
pub const DEFAULT_PROFILE_CACHE_USERS: usize = 10_000;

/// The default of `store.cache_size`: sled's page cache.
pub const DEFAULT_STORE_CACHE_SIZE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// `store.backend = "sled"` (default) with `store.path` (default `data/profilegate`) and
    /// `store.cache_size` (sled's page cache in bytes, 1 MiB to 64 GiB; default 16 MiB).
    Sled { path: PathBuf, cache_size: u64 },
    /// `store.backend = "postgres"` with `store.url` (or `store.url_file`) and, for
    /// `sslmode=require`, `store.tls_ca_file` (read at load: the PEM of the certificates that may
    /// sign the server's; without it, the Mozilla roots of `webpki-roots`).
    Postgres {
        url: Secret,
        tls_ca_pem: Option<Vec<u8>>,
    },
}

pub(super) fn read_store(mut r: SectionReader<'_>) -> Option<StoreConfig> {
    let backend = r.string("backend").unwrap_or_else(|| "sled".into());
    let profile_cache_users = r
        .integer_in("profile_cache_users", 0, 10_000_000)
        .map_or(DEFAULT_PROFILE_CACHE_USERS, |n| n as usize);
    let store = match backend.as_str() {
        "sled" => {
            let path = r
                .string("path")
                .unwrap_or_else(|| "data/profilegate".into());
            let cache_size = r
                .byte_size("cache_size", 1 << 20, 64 << 30)
                .unwrap_or(DEFAULT_STORE_CACHE_SIZE);
            if r.has_secret("url") {
                r.error("url", "is for backend = \"postgres\"; sled uses store.path");
                r.secret("url");
            }
            if r.has("tls_ca_file") {
                r.error("tls_ca_file", "is for backend = \"postgres\"");
                r.value("tls_ca_file");
            }
            Some(StoreBackend::Sled {
                path: r.path_from(path),
                cache_size,
            })
        }
        "postgres" => {
            for key in ["path", "cache_size"] {
                if r.has(key) {
                    r.error(key, "is for backend = \"sled\"; postgres uses store.url");
                    r.value(key);
                }
            }
            let tls_ca_pem = r.string("tls_ca_file").and_then(|raw| {
                let path = r.path_from(raw);
                match std::fs::read(&path) {
                    Ok(pem) => match postgres::parse_ca(&pem) {
                        Ok(_) => Some(pem),
                        Err(why) => {
                            r.error("tls_ca_file", format!("{}: {why}", path.display()));
                            None
                        }
                    },
                    Err(e) => {
                        r.error(
                            "tls_ca_file",
                            format!("cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                }
            });
            let has_url = r.has_secret("url");
            let url = r.secret("url");
            if !has_url {
                r.error(
                    "url",
                    "is required for backend = \"postgres\" (or url_file)",
                );
            }
            match url {
                Some(u)
                    if u.expose().starts_with("postgres://")
                        || u.expose().starts_with("postgresql://") =>
                {
                    match postgres::parse_url(u.expose()) {
                        Ok(pg)
                            if tls_ca_pem.is_some()
                                && pg.get_ssl_mode()
                                    != tokio_postgres::config::SslMode::Require =>
                        {
                            r.error(
                                "tls_ca_file",
                                "is only used with TLS: add sslmode=require to store.url",
                            );
                            None
                        }
                        Ok(_) => Some(StoreBackend::Postgres { url: u, tls_ca_pem }),
                        Err(why) => {
                            r.error("url", &why);
                            None
                        }
                    }
                }
                Some(_) => {
                    r.error("url", "must start with postgres:// or postgresql://");
                    None
                }
                None => None,
            }
        }
        other => {
            r.error(
                "backend",
                format!("{other:?} is not a store; use \"sled\" or \"postgres\""),
            );
            r.string("path");
            r.value("cache_size");
            r.secret("url");
            None
        }
    };
    r.finish();
    Some(StoreConfig {
        backend: store?,
        profile_cache_users,
    })
}
