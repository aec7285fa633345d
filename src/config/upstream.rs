//! `[upstream]`: the application behind the proxy, its timeouts, header spelling and the
//! profile-JWT key ([`UpstreamConfig`]), and the code that reads them.

use std::time::Duration;

use url::Url;

use super::reader::{http_url, SectionReader};
use super::secret::Secret;

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `upstream.url`: the application behind the proxy. Required in proxy mode; in
    /// forward_auth mode optional (default `server.public_url`), only the profile JWT's `aud`.
    pub url: Url,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// `upstream.connect_timeout`. Default `5s`.
    pub connect_timeout: Duration,
    /// `upstream.read_timeout`: longest wait for the upstream's response head, and between reads
    /// of its body. Default `60s`.
    pub read_timeout: Duration,
    /// `upstream.header_case`: `"title"` (default) writes header names to the app and to the
    /// client in Title-Case (`X-Forwarded-User`); `"preserve"` keeps the spelling each side sent
    /// (the proxy's own headers then go lower-case), at some CPU per request.
    pub preserve_header_case: bool,
    /// `upstream.jwt_key_file` (or `upstream.jwt_key` inline): the PKCS#8 PEM private key
    /// (EC P-256) that signs `X-Profile-Jwt`; only its PEM label is checked here. Default none.
    pub jwt_key_pem: Option<Secret>,
    /// `upstream.jwt_lifetime`: how long an `X-Profile-Jwt` is valid, 30s to 1h. Default `5m`.
    pub jwt_lifetime: Duration,
    /// `upstream.http2`: forward over HTTP/2 (h2c with prior knowledge for `http://`, ALPN `h2`
    /// for `https://`), one multiplexed connection per worker. Default `false`: HTTP/1.1
    /// whatever the client spoke.
    pub http2: bool,
}

/// `default_url`: the URL when `upstream.url` is not given (forward_auth mode); without one the
/// key is required.
pub(super) fn read_upstream(
    mut r: SectionReader<'_>,
    default_url: Option<Url>,
) -> Option<UpstreamConfig> {
    let url = match default_url {
        Some(default) => match r.string("url") {
            Some(raw) => http_url(&mut r, "url", &raw),
            None => Some(default),
        },
        None => r
            .required_string("url")
            .and_then(|raw| http_url(&mut r, "url", &raw)),
    };
    if let Some(u) = &url {
        if u.path() != "/" || u.query().is_some() {
            r.error(
                "url",
                "must not have a path or query: requests keep their own path",
            );
        }
    }
    let connect_timeout = r
        .duration(
            "connect_timeout",
            Duration::from_millis(10),
            Duration::from_secs(300),
        )
        .unwrap_or(Duration::from_secs(5));
    let read_timeout = r
        .duration(
            "read_timeout",
            Duration::from_millis(10),
            Duration::from_secs(86_400),
        )
        .unwrap_or(Duration::from_secs(60));
    let preserve_header_case = match r.string("header_case").as_deref() {
        None | Some("title") => false,
        Some("preserve") => true,
        Some(other) => {
            r.error(
                "header_case",
                format!("{other:?} is not a header spelling; use \"title\" or \"preserve\""),
            );
            false
        }
    };
    let jwt_key_pem = read_jwt_key(&mut r);
    let jwt_lifetime = r
        .duration(
            "jwt_lifetime",
            Duration::from_secs(30),
            Duration::from_secs(3600),
        )
        .unwrap_or(Duration::from_secs(300));
    let http2 = r.boolean("http2").unwrap_or(false);
    r.finish();
    let url = url?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default()?;
    Some(UpstreamConfig {
        tls: url.scheme() == "https",
        host,
        port,
        url,
        connect_timeout,
        read_timeout,
        preserve_header_case,
        jwt_key_pem,
        jwt_lifetime,
        http2,
    })
}

/// `upstream.jwt_key_file` / `upstream.jwt_key`: read now so a wrong path fails `check`; the
/// key itself is parsed by the signer.
fn read_jwt_key(r: &mut SectionReader<'_>) -> Option<Secret> {
    let key = if r.has("jwt_key_file") {
        "jwt_key_file"
    } else {
        "jwt_key"
    };
    let pem = r.secret("jwt_key")?;
    if pem.expose().contains("-----BEGIN PRIVATE KEY-----") {
        return Some(pem);
    }
    r.error(
        key,
        "is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----); convert an EC key with \
         `openssl pkcs8 -topk8 -nocrypt -in ec.pem -out key.pem`",
    );
    None
}
