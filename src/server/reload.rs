//! Configuration reload without a restart (SIGHUP, `POST /admin/reload`): the [`Reloader`]
//! re-reads the file start-up read, with the same environment, and swaps every worker's gate
//! for one built from it — questions, theme and templates, access rules and routes, upstream
//! settings — atomically for new requests; requests in flight finish on the gate they began
//! with. Keys that cannot change while the process runs (listeners, threads, the store, the
//! OP, the session cookies, the JWT key, logging) keep their running value and are reported
//! by key ([`restart_only`]). A file with errors changes nothing: every error is logged and
//! reported with its key.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::build::{gate, reloaded_parts};
use super::error::StartError;
use crate::admin::{AdminAuth, Reload, ReloadReport};
use crate::config::{Config, ConfigError, ProcessEnv, StoreBackend};
use crate::proxy::{Gate, GateParts, GateSlot};

/// Re-reads the configuration file and swaps the workers' gates (one reload at a time).
pub struct Reloader {
    path: PathBuf,
    running: Mutex<Running>,
    slots: Vec<GateSlot>,
    admin: Option<AdminAuth>,
}

/// The configuration being served (restart-only keys as at start-up) and its gates' parts.
struct Running {
    config: Config,
    parts: GateParts,
}

impl Reloader {
    /// A reloader of the file at `path`, which `config` was read from and `parts` built from,
    /// for the workers whose gates are in `slots` and the admin tokens of `admin`.
    pub fn new(
        path: PathBuf,
        config: Config,
        parts: GateParts,
        slots: Vec<GateSlot>,
        admin: Option<AdminAuth>,
    ) -> Self {
        Self {
            path,
            running: Mutex::new(Running { config, parts }),
            slots,
            admin,
        }
    }

    fn reload_now(&self, trigger: &str) -> ReloadReport {
        // A reload that panicked left `running` as it was before it: its restart-only values
        // are those every gate has, swapped or not, so the next reload can go on from it.
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let loaded = match Config::load(&self.path, &ProcessEnv) {
            Ok(loaded) => loaded,
            Err(errors) => return refused(trigger, errors.0),
        };
        let (next, needs_restart) = settle(&running.config, loaded);
        let (parts, gates) = match build_gates(&next, &running.parts, self.slots.len()) {
            Ok(built) => built,
            Err(error) => return refused(trigger, vec![error]),
        };
        for (slot, gate) in self.slots.iter().zip(gates) {
            slot.store(Arc::new(gate));
        }
        if let Some(admin) = &self.admin {
            admin.replace(&next.admin);
        }
        for key in &needs_restart {
            tracing::warn!(
                key,
                trigger,
                "configuration reload: this key changed but needs a restart; its running value is kept"
            );
        }
        tracing::info!(
            trigger,
            needs_restart = needs_restart.len(),
            "configuration reloaded"
        );
        *running = Running {
            config: next,
            parts,
        };
        ReloadReport {
            applied: true,
            errors: Vec::new(),
            needs_restart,
        }
    }
}

impl Reload for Reloader {
    fn reload(&self, trigger: &str) -> ReloadReport {
        self.reload_now(trigger)
    }
}

/// Logs every error of a refused reload and reports them.
fn refused(trigger: &str, errors: Vec<ConfigError>) -> ReloadReport {
    for error in &errors {
        tracing::error!(
            key = error.key.as_str(),
            error = error.message.as_str(),
            trigger,
            "configuration reload: invalid configuration"
        );
    }
    tracing::error!(
        trigger,
        errors = errors.len(),
        "configuration reload refused: the running configuration is kept"
    );
    ReloadReport {
        applied: false,
        errors,
        needs_restart: Vec::new(),
    }
}

/// The new parts and one gate per worker, all built before any is swapped in.
fn build_gates(
    config: &Config,
    running: &GateParts,
    workers: usize,
) -> Result<(GateParts, Vec<Gate>), ConfigError> {
    let parts = reloaded_parts(config, running).map_err(start_error)?;
    let gates = (0..workers)
        .map(|_| gate(config, &parts).map_err(start_error))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((parts, gates))
}

/// What building the gates from a valid configuration can still refuse, by key.
fn start_error(error: StartError) -> ConfigError {
    let key = match &error {
        StartError::Templates(_) => "theme.templates",
        StartError::UpstreamUri(_) => "upstream.url",
        _ => "configuration",
    };
    ConfigError::new(key, error.to_string())
}

/// `loaded` with every restart-only key set back to its value in `running`, and those keys
/// whose value differed. Values are compared, never printed (some are secrets).
fn settle(running: &Config, mut loaded: Config) -> (Config, Vec<&'static str>) {
    let mut changed = Vec::new();
    restart_only(running, &mut loaded, &mut changed);
    (loaded, changed)
}

/// Keeps `running`'s value of `key` in `next` when they differ, and notes `key`.
fn keep<T: PartialEq + Clone>(
    key: &'static str,
    running: &T,
    next: &mut T,
    changed: &mut Vec<&'static str>,
) {
    if running != next {
        *next = running.clone();
        changed.push(key);
    }
}

/// The keys a reload does not apply, each for a reason:
/// - the listeners, worker count, shutdown timeout and HTTP parser limits are set up once
///   (`server.listen`, `server.admin_listen`, `server.threads`, `server.shutdown_timeout`,
///   `server.max_request_head_bytes`, `upstream.header_case`, the TLS files' paths,
///   `server.http_redirect_listen`, `server.h2c`, `upstream.http2`);
/// - the OIDC client is kept, with its callback URL (`server.public_url`, `server.prefix`,
///   `[oidc]`);
/// - sessions must keep opening (`[session]`) and profile JWTs keep verifying
///   (`upstream.jwt_key_file`);
/// - the store is open (`[store]` but `profile_cache_users`); logging is set up (`[log]`);
/// - turning the admin API on or off (`admin.token_file` given or not; its tokens reload).
fn restart_only(running: &Config, next: &mut Config, changed: &mut Vec<&'static str>) {
    let (old, new) = (&running.server, &mut next.server);
    keep("server.listen", &old.listen, &mut new.listen, changed);
    keep(
        "server.admin_listen",
        &old.admin_listen,
        &mut new.admin_listen,
        changed,
    );
    keep("server.threads", &old.threads, &mut new.threads, changed);
    keep(
        "server.public_url",
        &old.public_url,
        &mut new.public_url,
        changed,
    );
    keep("server.prefix", &old.prefix, &mut new.prefix, changed);
    keep(
        "server.shutdown_timeout",
        &old.shutdown_timeout,
        &mut new.shutdown_timeout,
        changed,
    );
    keep(
        "server.max_request_head_bytes",
        &old.max_request_head_bytes,
        &mut new.max_request_head_bytes,
        changed,
    );

    // The listener's protocols are set up once; the certificate files' contents reload by
    // themselves (server/tls.rs), their paths do not.
    keep("server.tls_cert_file", &old.tls, &mut new.tls, changed);
    keep(
        "server.http_redirect_listen",
        &old.http_redirect_listen,
        &mut new.http_redirect_listen,
        changed,
    );
    keep("server.h2c", &old.h2c, &mut new.h2c, changed);

    let (old, new) = (&running.upstream, &mut next.upstream);
    keep("upstream.http2", &old.http2, &mut new.http2, changed);
    keep(
        "upstream.header_case",
        &old.preserve_header_case,
        &mut new.preserve_header_case,
        changed,
    );
    keep(
        "upstream.jwt_key_file",
        &old.jwt_key_pem,
        &mut new.jwt_key_pem,
        changed,
    );

    let (old, new) = (&running.oidc, &mut next.oidc);
    keep("oidc.issuer", &old.issuer, &mut new.issuer, changed);
    keep(
        "oidc.client_id",
        &old.client_id,
        &mut new.client_id,
        changed,
    );
    keep(
        "oidc.client_secret",
        &old.client_secret,
        &mut new.client_secret,
        changed,
    );
    keep(
        "oidc.token_endpoint_auth",
        &old.token_endpoint_auth,
        &mut new.token_endpoint_auth,
        changed,
    );
    keep(
        "oidc.client_key_file",
        &old.client_key_pem,
        &mut new.client_key_pem,
        changed,
    );
    keep(
        "oidc.client_key_id",
        &old.client_key_id,
        &mut new.client_key_id,
        changed,
    );
    keep("oidc.scopes", &old.scopes, &mut new.scopes, changed);
    keep("oidc.timeout", &old.timeout, &mut new.timeout, changed);
    keep(
        "oidc.login_timeout",
        &old.login_timeout,
        &mut new.login_timeout,
        changed,
    );
    keep(
        "oidc.signing_algs",
        &old.signing_algs,
        &mut new.signing_algs,
        changed,
    );

    let (old, new) = (&running.session, &mut next.session);
    keep("session.secret", &old.secrets, &mut new.secrets, changed);
    keep(
        "session.lifetime",
        &old.lifetime,
        &mut new.lifetime,
        changed,
    );
    keep(
        "session.cookie_name",
        &old.cookie_name,
        &mut new.cookie_name,
        changed,
    );

    keep_store(&running.store.backend, &mut next.store.backend, changed);

    let (old, new) = (&running.log, &mut next.log);
    keep("log.level", &old.level, &mut new.level, changed);
    keep("log.format", &old.format, &mut new.format, changed);
    keep("log.access", &old.access, &mut new.access, changed);

    if running.admin.enabled() != next.admin.enabled() {
        next.admin = running.admin.clone();
        changed.push("admin.token_file");
    }
}

/// `[store]`'s backend and its settings (not `profile_cache_users`: the profile cache is
/// rebuilt by a reload).
fn keep_store(running: &StoreBackend, next: &mut StoreBackend, changed: &mut Vec<&'static str>) {
    match (running, &mut *next) {
        (
            StoreBackend::Sled { path, cache_size },
            StoreBackend::Sled {
                path: new_path,
                cache_size: new_size,
            },
        ) => {
            keep("store.path", path, new_path, changed);
            keep("store.cache_size", cache_size, new_size, changed);
        }
        (
            StoreBackend::Postgres { url, tls_ca_pem },
            StoreBackend::Postgres {
                url: new_url,
                tls_ca_pem: new_ca,
            },
        ) => {
            keep("store.url", url, new_url, changed);
            keep("store.tls_ca_file", tls_ca_pem, new_ca, changed);
        }
        _ => {
            *next = running.clone();
            changed.push("store.backend");
        }
    }
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
