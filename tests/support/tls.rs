//! TLS for the tests (tests/tls.rs, tests/http2.rs): a test CA and two leaf certificates for
//! 127.0.0.1 and localhost made with `openssl` in a temporary directory, profilegate started
//! (the binary) with `server.tls_cert_file` and an https `public_url`, clients that trust the
//! CA (reqwest, tokio-rustls, curl), and the certificate a new connection is served.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::child::{output_within, COMMAND_LIMIT};
use super::proxy::{configured, Proxy};
use super::{free_port, EchoUpstream, TestEnv, TestOp};

/// A public prefix: forwarded without a session.
pub const PUBLIC: &str = "[[routes]]\npath = \"/pub/\"\npublic = true\n";

/// OP + echo upstream + profilegate (the binary) with TLS (`leaf1`) and the [`PUBLIC`] route,
/// the OP's client registered for the https origin; `extra_server` goes into `[server]`.
pub async fn tls_env(certs: &TestCerts, extra_server: &str) -> TestEnv {
    let port = free_port();
    let op = TestOp::start(port, op_clients(&format!("https://127.0.0.1:{port}")));
    let upstream = EchoUpstream::start().await;
    let mut proxy = tls_proxy(
        certs,
        port,
        &op.issuer,
        &upstream.url(),
        extra_server,
        "",
        PUBLIC,
    );
    proxy.spawn(true).await;
    TestEnv {
        op,
        upstream,
        proxy,
    }
}

/// A browser (cookies, no redirects followed) that trusts the test CA.
pub fn tls_browser(certs: &TestCerts) -> super::Browser {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let pem = std::fs::read(certs.ca()).expect("CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"))
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    super::Browser { jar, client }
}

/// A test CA and two leaf certificates signed by it (`leaf1`, `leaf2`: different keys, serials
/// and subjects), all valid for 127.0.0.1 and localhost.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
}

/// Runs `openssl` with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = output_within(
        Command::new("openssl").args(args).current_dir(dir),
        "openssl",
        COMMAND_LIMIT,
    )
    .expect("openssl runs (the test command installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCerts {
    pub fn make() -> TestCerts {
        let dir = tempfile::tempdir().expect("tempdir for certificates");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=profilegate test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        std::fs::write(
            d.join("leaf.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("extensions file");
        for (name, serial) in [("leaf1", "4097"), ("leaf2", "8194")] {
            let subject = format!("/CN=profilegate {name}");
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &subject,
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "2",
                    "-extfile",
                    "leaf.ext",
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        TestCerts { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// The DER of `leaf`'s certificate (`leaf1` or `leaf2`).
    pub fn der(&self, leaf: &str) -> Vec<u8> {
        CertificateDer::from_pem_file(self.path(&format!("{leaf}.pem")))
            .expect("leaf certificate")
            .to_vec()
    }

    /// Copies `leaf`'s certificate and key over `cert` and `key` (in place, as a rotation
    /// tool writing the files does).
    pub fn install(&self, leaf: &str, cert: &Path, key: &Path) {
        std::fs::copy(self.path(&format!("{leaf}.pem")), cert).expect("certificate copied");
        std::fs::copy(self.path(&format!("{leaf}.key")), key).expect("key copied");
    }

    /// A reqwest client trusting the test CA (HTTP/1.1; no redirects followed).
    pub fn reqwest(&self) -> reqwest::Client {
        let pem = std::fs::read(self.ca()).expect("CA");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA certificate"))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    /// A rustls client configuration trusting the test CA and offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(self.ca()).expect("CA"))
            .expect("CA added");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A new TLS connection to `127.0.0.1:port` (SNI localhost) offering `alpn`, within 10 s.
    pub async fn connect(&self, port: u16, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let connector = tokio_rustls::TlsConnector::from(self.client_config(alpn));
        let connecting = async {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            let name = ServerName::try_from("localhost").expect("server name");
            connector.connect(name, tcp).await
        };
        tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .expect("the TLS handshake finished within 10 s")
            .expect("the TLS handshake succeeded")
    }
}

/// The DER of the certificate the server presented on `stream`.
pub fn served_certificate(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presented a certificate")
        .to_vec()
}

/// profilegate (the binary) on a new port with TLS from `leaf1` (copied to `server.crt` and
/// `server.key` in the proxy's directory), `public_url = "https://127.0.0.1:<port>"`,
/// `extra_server` appended to `[server]`, `extra_upstream` to `[upstream]`, `sections` after.
/// Not started: call [`Proxy::spawn`].
pub fn tls_proxy(
    certs: &TestCerts,
    port: u16,
    issuer: &str,
    upstream: &str,
    extra_server: &str,
    extra_upstream: &str,
    sections: &str,
) -> Proxy {
    let mut proxy = configured(port, issuer, upstream, "", extra_upstream, sections);
    let (cert, key) = (
        proxy.dir.path().join("server.crt"),
        proxy.dir.path().join("server.key"),
    );
    certs.install("leaf1", &cert, &key);
    let origin = format!("https://127.0.0.1:{port}");
    let text = std::fs::read_to_string(&proxy.config_path).expect("configuration");
    let plain = format!("public_url = \"http://127.0.0.1:{port}\"");
    assert!(text.contains(&plain), "the configuration names {plain}");
    let text = text.replace(
        &plain,
        &format!(
            "public_url = \"{origin}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n{extra_server}",
            cert.display(),
            key.display()
        ),
    );
    std::fs::write(&proxy.config_path, text).expect("configuration written");
    proxy.origin = origin;
    proxy
}

/// The OP's `clients` for a proxy at `origin` (an https one, say).
pub fn op_clients(origin: &str) -> serde_json::Value {
    serde_json::json!({
        "clients": [{
            "client_id": super::CLIENT_ID,
            "client_secret": super::CLIENT_SECRET,
            "redirect_uris": [format!("{origin}/.profilegate/callback")],
            "post_logout_redirect_uris": [format!("{origin}/.profilegate/signed-out")],
        }],
    })
}

/// Runs curl with `args` (within 30 s) and returns (exit code, stdout, stderr). On a blocking
/// thread: the test's runtime keeps serving the echo upstream meanwhile.
pub async fn curl(args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = output_within(
            Command::new("curl")
                .args(["-sS", "--max-time", "20"])
                .args(&args),
            "curl",
            Duration::from_secs(30),
        )
        .expect("curl runs (the test command installs it)");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("curl's thread")
}
