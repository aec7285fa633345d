//! `[server]`: the listeners, the public origin, trusted proxies, threads, the route prefix and
//! the request-head limits ([`ServerConfig`]), and the code that reads them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::hints;
use super::reader::SectionReader;
use super::tls::TlsFiles;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `server.listen`: public listener. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `server.public_url`: the origin users see. Default `http://<listen>` when `listen` names
    /// a specific address.
    pub public_url: PublicUrl,
    /// `server.admin_listen`: health, readiness and metrics. Default `127.0.0.1:9091`.
    pub admin_listen: SocketAddr,
    /// `server.trusted_proxies`: CIDRs whose `X-Forwarded-*` headers are believed. Default none.
    pub trusted_proxies: Vec<IpNet>,
    /// `server.threads`: worker threads of the proxy. Default: the number of CPUs.
    pub threads: usize,
    /// `server.prefix`: where the proxy's own routes live. Default `/.profilegate`.
    pub prefix: String,
    /// `server.shutdown_timeout`: how long in-flight requests may finish at SIGTERM. Default `5s`.
    pub shutdown_timeout: Duration,
    /// `server.max_header_bytes`: longest request header line, counted as `name: value`
    /// (no CRLF); longer gets 431 before the session cookie is read. Default `16KiB`
    /// (1 KiB to 1 MiB, at most `max_request_head_bytes`).
    pub max_header_bytes: usize,
    /// `server.max_request_head_bytes`: largest request head (request line and all header
    /// lines, as received); larger gets 431 from the HTTP parser. Default `64KiB` (8 KiB to
    /// 1 MiB).
    pub max_request_head_bytes: usize,
    /// `server.tls_cert_file` and `server.tls_key_file`: with both, `listen` speaks TLS 1.2/1.3
    /// (ALPN `h2`, `http/1.1`) and the files are re-read when they change. Default none.
    pub tls: Option<TlsFiles>,
    /// `server.http_redirect_listen`: a plain listener answering every request with 308 to
    /// `public_url` and the same path and query (needs TLS). Default none.
    pub http_redirect_listen: Option<SocketAddr>,
    /// `server.h2c`: HTTP/2 with prior knowledge on a plain `listen` (refused with TLS, where
    /// ALPN decides). Default `false`.
    pub h2c: bool,
    /// `server.mode`: `"proxy"` (default: profilegate forwards to `upstream.url`) or
    /// `"forward_auth"` (an edge proxy asks `{prefix}/auth` and forwards itself).
    pub mode: ServerMode,
}

/// How profilegate sits in front of the application (`server.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    /// profilegate is the reverse proxy: it forwards signed-in requests to `upstream.url`.
    Proxy,
    /// nginx `auth_request`, Caddy `forward_auth` or Traefik `ForwardAuth` ask `{prefix}/auth`
    /// whether a request may pass, and forward it themselves.
    ForwardAuth,
}

/// Default of `server.max_header_bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// Default of `server.max_request_head_bytes`.
pub const DEFAULT_MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// The public origin, `scheme://host[:port]`, with no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    url: Url,
    origin: String,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(message) = hints::missing_scheme(raw) {
            return Err(message);
        }
        let url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("must start with http:// or https://".into());
        }
        if url.host_str().is_none() {
            return Err("must name a host".into());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("must be an origin only (scheme, host, port), without a path".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".into());
        }
        let origin = url.origin().ascii_serialization();
        Ok(Self { url, origin })
    }
    /// `scheme://host[:port]`, without a trailing slash.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }
    pub fn url(&self) -> &Url {
        &self.url
    }
}

pub(super) fn read_server(mut r: SectionReader<'_>) -> Option<ServerConfig> {
    let listen = socket_addr(&mut r, "listen", "127.0.0.1:8080");
    let admin_listen = socket_addr(&mut r, "admin_listen", "127.0.0.1:9091");
    let public_url = match r.string("public_url") {
        Some(raw) => match PublicUrl::parse(raw.trim()) {
            Ok(u) => Some(u),
            Err(msg) => {
                r.error("public_url", msg);
                None
            }
        },
        None => match listen {
            Some(addr) if !addr.ip().is_unspecified() => {
                PublicUrl::parse(&format!("http://{addr}")).ok()
            }
            Some(_) => {
                r.error(
                    "public_url",
                    "is required when server.listen is 0.0.0.0 or [::]: give the URL users open",
                );
                None
            }
            None => None,
        },
    };
    let mut trusted_proxies = Vec::new();
    for (i, raw) in r
        .string_list("trusted_proxies")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let parsed = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => r.error(
                &format!("trusted_proxies[{i}]"),
                format!("{raw:?} is not an IP address or CIDR such as 10.0.0.0/8"),
            ),
        }
    }
    let default_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = r
        .integer_in("threads", 1, 256)
        .map_or(default_threads, |t| t as usize);
    let prefix = r.string("prefix").unwrap_or_else(|| "/.profilegate".into());
    let prefix_ok = prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-~".contains(&b));
    if !prefix_ok {
        r.error(
            "prefix",
            "must start with / and not end with it, using letters, digits, . _ - ~ and /",
        );
    }
    let shutdown_timeout = r
        .duration("shutdown_timeout", Duration::ZERO, Duration::from_secs(600))
        .unwrap_or(Duration::from_secs(5));
    // The head limit is hyper's `max_header_size`; hyper's read buffer (1 MiB) bounds it.
    let max_request_head_bytes = r
        .byte_size("max_request_head_bytes", 8 << 10, 1 << 20)
        .map_or(DEFAULT_MAX_REQUEST_HEAD_BYTES, |b| b as usize);
    let max_header_bytes = r
        .byte_size("max_header_bytes", 1 << 10, 1 << 20)
        .map_or(DEFAULT_MAX_HEADER_BYTES, |b| b as usize);
    if max_header_bytes > max_request_head_bytes {
        r.error(
            "max_header_bytes",
            format!(
                "must not exceed server.max_request_head_bytes ({max_request_head_bytes} bytes): one line is part of the head, found {max_header_bytes} bytes"
            ),
        );
    }
    let mode = match r.string("mode").as_deref().map(str::trim) {
        None | Some("proxy") => ServerMode::Proxy,
        Some("forward_auth") => ServerMode::ForwardAuth,
        Some(other) => {
            r.error(
                "mode",
                format!("{other:?} is not a mode; use \"proxy\" or \"forward_auth\""),
            );
            ServerMode::Proxy
        }
    };
    if mode == ServerMode::ForwardAuth && trusted_proxies.is_empty() {
        r.error(
            "trusted_proxies",
            "must list the edge proxy's address in forward_auth mode: the forward-auth route answers only \
             the addresses listed here (for example [\"127.0.0.1\"])",
        );
    }
    if let (Some(l), Some(a)) = (listen, admin_listen) {
        if l == a {
            r.error(
                "admin_listen",
                "must differ from server.listen: admin is never on the public port",
            );
        }
    }
    let tls_given = r.has("tls_cert_file") || r.has("tls_key_file");
    let tls = read_tls(&mut r);
    let http_redirect_listen = match r.string("http_redirect_listen") {
        Some(raw) => match raw.trim().parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                r.error(
                    "http_redirect_listen",
                    format!("{raw:?} is not an address such as 0.0.0.0:80"),
                );
                None
            }
        },
        None => None,
    };
    if let Some(redirect) = http_redirect_listen {
        if !tls_given {
            r.error(
                "http_redirect_listen",
                "needs server.tls_cert_file and server.tls_key_file: it redirects to the TLS listener",
            );
        }
        if Some(redirect) == listen || Some(redirect) == admin_listen {
            r.error(
                "http_redirect_listen",
                "must differ from server.listen and server.admin_listen",
            );
        }
    }
    let h2c = r.boolean("h2c").unwrap_or(false);
    if h2c && tls_given {
        r.error(
            "h2c",
            "is for a plain listener only: over TLS, ALPN offers HTTP/2 to every client",
        );
    }
    r.finish();
    Some(ServerConfig {
        listen: listen?,
        public_url: public_url?,
        admin_listen: admin_listen?,
        trusted_proxies,
        threads,
        prefix,
        shutdown_timeout,
        max_header_bytes,
        max_request_head_bytes,
        tls,
        http_redirect_listen,
        h2c,
        mode,
    })
}

/// `server.tls_cert_file` and `server.tls_key_file`: both or neither, both loaded now (so
/// `check` names an unreadable, empty or mismatched file by its key).
fn read_tls(r: &mut SectionReader<'_>) -> Option<TlsFiles> {
    let cert = r.string("tls_cert_file");
    let key = r.string("tls_key_file");
    let (cert, key) = match (cert, key) {
        (None, None) => return None,
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            r.error(
                "tls_key_file",
                "is required with server.tls_cert_file: give both or neither",
            );
            return None;
        }
        (None, Some(_)) => {
            r.error(
                "tls_cert_file",
                "is required with server.tls_key_file: give both or neither",
            );
            return None;
        }
    };
    let files = TlsFiles {
        cert_file: r.path_from(cert),
        key_file: r.path_from(key),
    };
    match files.load() {
        Ok(_) => Some(files),
        Err(e) => {
            r.error(e.key, e.message);
            None
        }
    }
}

fn socket_addr(r: &mut SectionReader<'_>, key: &str, default: &str) -> Option<SocketAddr> {
    let raw = r.string(key).unwrap_or_else(|| default.to_owned());
    match raw.trim().parse() {
        Ok(a) => Some(a),
        Err(_) => {
            r.error(
                key,
                format!("{raw:?} is not an address such as 127.0.0.1:8080"),
            );
            None
        }
    }
}
