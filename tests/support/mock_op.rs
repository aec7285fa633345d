#![allow(dead_code)]
//! An in-process mock OpenID Provider, for the one thing a real OP will not do: misbehave on
//! purpose. It follows the protocol far enough for profilegate's login — discovery, JWKS,
//! `/authorize` (remembers state, nonce and the PKCE challenge, answers with a one-use code),
//! `/token` (client authentication, PKCE S256, one use per code: `invalid_grant` on a replay),
//! `/userinfo` — and the ID token `/token` returns is whatever the test forges: ES256 with
//! keys generated here (ring), HS256, unsigned, or malformed. Every code exchange also hands
//! out a refresh token; the `refresh_token` grant answers with [`MockOp::set_refresh_forge`]'s
//! ID token (a valid one for the same subject, no nonce, by default) or with the error
//! [`MockOp::set_refresh_error`] sets.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const CLIENT_ID: &str = "profilegate";
pub const CLIENT_SECRET: &str = "test-client-secret";

/// An EC P-256 signing key and its public JWK.
pub struct SigningKey {
    pub kid: String,
    pair: EcdsaKeyPair,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("P-256 key pair");
        Self {
            kid: kid.to_owned(),
            pair,
        }
    }

    /// The uncompressed public point, `04 || x || y`.
    pub fn public_bytes(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn jwk(&self) -> Value {
        let point = self.public_bytes();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// A compact JWS over `header` and `claims`, signed ES256 with this key (whatever the
    /// header says).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("ES256 signature");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// A token signed ES256 with this key's id in the header.
    pub fn es256(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": "ES256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }
}

/// `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A compact JWS signed HS256 with `key`.
pub fn hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        input.as_bytes(),
    );
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// What `/token` knows when it forges an ID token.
pub struct TokenContext {
    pub issuer: String,
    pub client_id: String,
    /// The nonce of the authorization this code came from.
    pub nonce: Option<String>,
    pub now: u64,
}

impl TokenContext {
    /// The claims of a valid ID token for `sub`.
    pub fn claims(&self, sub: &str) -> Value {
        let mut c = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": self.client_id,
            "iat": self.now,
            "exp": self.now + 300,
            "auth_time": self.now,
        });
        if let Some(n) = &self.nonce {
            c["nonce"] = json!(n);
        }
        c
    }
}

/// Forges the ID token of one `/token` answer.
pub type Forge = Arc<dyn Fn(&TokenContext, &OpKeys) -> String + Send + Sync>;

/// Signs the claims of one userinfo answer into a compact JWS.
pub type Signer = Arc<dyn Fn(&Value, &OpKeys) -> String + Send + Sync>;

/// The keys: the published ones (in the JWKS) and the rest (known to the test only).
pub struct OpKeys {
    pub published: Vec<SigningKey>,
    pub unpublished: Vec<SigningKey>,
}

impl OpKeys {
    /// The key that signs valid tokens.
    pub fn main(&self) -> &SigningKey {
        &self.published[0]
    }
}

struct Authorization {
    redirect_uri: String,
    nonce: Option<String>,
    challenge: Option<String>,
    sub: String,
}

#[derive(Default)]
struct Counters {
    jwks: usize,
    token: usize,
    userinfo: usize,
}

struct OpState {
    issuer: String,
    keys: OpKeys,
    codes: HashMap<String, Authorization>,
    used_codes: Vec<String>,
    access_tokens: HashMap<String, String>,
    forge: Forge,
    /// Userinfo's `sub`; the authorization's subject when `None`.
    userinfo_sub: Option<String>,
    /// Signs userinfo answers (served as `application/jwt`); JSON when `None`.
    userinfo_signer: Option<Signer>,
    /// The issuer the metadata names, when it is not the real one (a misconfigured OP).
    metadata_issuer: Option<String>,
    /// The `iss` of the authorization response, when it is not the real issuer.
    callback_iss: Option<String>,
    /// `token_endpoint_auth_methods_supported`; the token endpoint accepts exactly these.
    auth_methods: Vec<&'static str>,
    /// The client authentication each `/token` request used.
    auth_used: Vec<&'static str>,
    /// Whether the JWKS lists each key's `kid`.
    kids_in_jwks: bool,
    counters: Counters,
    issued: Vec<String>,
    next: u64,
    /// The refresh tokens handed out, and their subjects.
    refresh_tokens: HashMap<String, String>,
    /// How a refresh's ID token is forged (`None`: valid, same subject, no nonce).
    refresh_forge: Option<Forge>,
    /// The error (HTTP status, OAuth `error`) every refresh gets, when set.
    refresh_error: Option<(u16, &'static str)>,
    /// How many `refresh_token` grants `/token` received.
    refreshes: usize,
}

/// The mock OP, serving on 127.0.0.1 until dropped.
pub struct MockOp {
    pub issuer: String,
    state: Arc<Mutex<OpState>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockOp {
    pub async fn start() -> MockOp {
        Self::start_at("").await
    }

    /// A mock OP whose issuer has a path (`/realms/acme`, as Keycloak's do); every endpoint
    /// lives under it. A trailing `/` stays in the issuer (`/` alone: `http://127.0.0.1:N/`),
    /// as Auth0's issuers have one.
    pub async fn start_at(path: &str) -> MockOp {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock OP");
        let issuer = format!(
            "http://127.0.0.1:{}{path}",
            listener.local_addr().expect("addr").port()
        );
        let prefix = path.trim_end_matches('/').to_owned();
        let keys = OpKeys {
            published: vec![SigningKey::generate("main-key")],
            unpublished: vec![
                SigningKey::generate("rotated-key"),
                SigningKey::generate("never-published"),
            ],
        };
        let state = Arc::new(Mutex::new(OpState {
            issuer: issuer.clone(),
            keys,
            codes: HashMap::new(),
            used_codes: Vec::new(),
            access_tokens: HashMap::new(),
            forge: Arc::new(|ctx: &TokenContext, keys: &OpKeys| {
                keys.main().es256(&ctx.claims("alice"))
            }),
            userinfo_sub: None,
            userinfo_signer: None,
            metadata_issuer: None,
            callback_iss: None,
            auth_methods: vec!["client_secret_basic"],
            auth_used: Vec::new(),
            kids_in_jwks: true,
            counters: Counters::default(),
            issued: Vec::new(),
            next: 0,
            refresh_tokens: HashMap::new(),
            refresh_forge: None,
            refresh_error: None,
            refreshes: 0,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                let prefix = prefix.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, state.clone(), prefix.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        MockOp {
            issuer,
            state,
            task,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut OpState) -> T) -> T {
        f(&mut self.state.lock().expect("mock OP state"))
    }

    /// Whatever `f` makes with the OP's keys (a token signed by the OP, or by a key it never
    /// published): forged logout tokens.
    pub fn with_keys<T>(&self, f: impl FnOnce(&OpKeys) -> T) -> T {
        self.with(|s| f(&s.keys))
    }

    /// How `/token` forges the ID tokens from now on.
    pub fn set_forge(&self, forge: Forge) {
        self.with(|s| s.forge = forge);
    }

    /// Userinfo answers for this subject instead of the signed-in one.
    pub fn set_userinfo_sub(&self, sub: Option<&str>) {
        self.with(|s| s.userinfo_sub = sub.map(str::to_owned));
    }

    /// Userinfo answers signed by `signer` (`application/jwt`) instead of JSON.
    pub fn set_userinfo_signer(&self, signer: Option<Signer>) {
        self.with(|s| s.userinfo_signer = signer);
    }

    /// The metadata names `issuer` instead of the real one.
    pub fn set_metadata_issuer(&self, issuer: Option<&str>) {
        self.with(|s| s.metadata_issuer = issuer.map(str::to_owned));
    }

    /// The authorization response carries `iss` instead of the real issuer.
    pub fn set_callback_iss(&self, iss: Option<&str>) {
        self.with(|s| s.callback_iss = iss.map(str::to_owned));
    }

    /// The client authentication methods the OP lists and accepts, in order.
    pub fn set_auth_methods(&self, methods: &[&'static str]) {
        self.with(|s| s.auth_methods = methods.to_vec());
    }

    /// The client authentication each `/token` request used, in order.
    pub fn auth_used(&self) -> Vec<&'static str> {
        self.with(|s| s.auth_used.clone())
    }

    /// Publishes every key, the first unpublished ones included, without a `kid` in the JWKS.
    pub fn publish_all_without_kids(&self) {
        self.with(|s| {
            s.kids_in_jwks = false;
            let rest: Vec<SigningKey> = s.keys.unpublished.drain(..).collect();
            s.keys.published.extend(rest);
        });
    }

    /// Publishes the first unpublished key (`rotated-key`) in the JWKS.
    pub fn rotate(&self) {
        self.with(|s| {
            let key = s.keys.unpublished.remove(0);
            s.keys.published.insert(0, key);
        });
    }

    pub fn jwks_requests(&self) -> usize {
        self.with(|s| s.counters.jwks)
    }

    pub fn token_requests(&self) -> usize {
        self.with(|s| s.counters.token)
    }

    pub fn userinfo_requests(&self) -> usize {
        self.with(|s| s.counters.userinfo)
    }

    /// How a refresh's ID token is forged from now on (`None`: a valid one, no nonce).
    pub fn set_refresh_forge(&self, forge: Option<Forge>) {
        self.with(|s| s.refresh_forge = forge);
    }

    /// Every refresh from now on gets HTTP `status` with OAuth error `error` (`None`: served).
    pub fn set_refresh_error(&self, error: Option<(u16, &'static str)>) {
        self.with(|s| s.refresh_error = error);
    }

    /// How many `refresh_token` grants `/token` received.
    pub fn refresh_requests(&self) -> usize {
        self.with(|s| s.refreshes)
    }

    /// Every ID token, access token and refresh token `/token` has handed out.
    pub fn issued(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }
}

impl Drop for MockOp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(body.into()))
        .expect("response")
}

fn json_reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", body.to_string())
}

fn oauth_error(status: u16, error: &str) -> Response<Full<Bytes>> {
    json_reply(status, &json!({ "error": error }))
}

fn params(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<OpState>>,
    prefix: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let full = req.uri().path().to_owned();
    // Endpoints live under the issuer's path; anything else falls through to 404.
    let path = full
        .strip_prefix(prefix.as_str())
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or("/not-under-the-issuer")
        .to_owned();
    let query = params(req.uri().query().unwrap_or("").as_bytes());
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().expect("mock OP state");
    // Endpoints hang below the issuer without doubling its trailing slash.
    let issuer = s.issuer.trim_end_matches('/').to_owned();
    let resp = match path.as_str() {
        "/.well-known/openid-configuration" => json_reply(
            200,
            &json!({
                "issuer": s.metadata_issuer.clone().unwrap_or_else(|| s.issuer.clone()),
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "token_endpoint_auth_methods_supported": s.auth_methods,
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile"],
            }),
        ),
        "/jwks" => {
            s.counters.jwks += 1;
            let keys: Vec<Value> = s
                .keys
                .published
                .iter()
                .map(|k| {
                    let mut jwk = k.jwk();
                    if !s.kids_in_jwks {
                        jwk.as_object_mut().map(|o| o.remove("kid"));
                    }
                    jwk
                })
                .collect();
            json_reply(200, &json!({ "keys": keys }))
        }
        "/authorize" => authorize(&mut s, &query),
        "/token" => token(&mut s, &params(&body), authorization.as_deref()),
        "/userinfo" => {
            s.counters.userinfo += 1;
            let bearer = authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "));
            match bearer.and_then(|t| s.access_tokens.get(t)) {
                Some(sub) => {
                    let sub = s.userinfo_sub.clone().unwrap_or_else(|| sub.clone());
                    let claims = json!({
                        "sub": sub,
                        "email": format!("{sub}@example.com"),
                        "email_verified": true,
                        "preferred_username": sub,
                    });
                    match &s.userinfo_signer {
                        Some(sign) => reply(200, "application/jwt", sign(&claims, &s.keys)),
                        None => json_reply(200, &claims),
                    }
                }
                None => oauth_error(401, "invalid_token"),
            }
        }
        _ => reply(404, "text/plain", "not found"),
    };
    Ok(resp)
}

fn authorize(s: &mut OpState, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("scope")
            .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    let (Some(redirect_uri), Some(state), true) = (q.get("redirect_uri"), q.get("state"), ok)
    else {
        return reply(400, "text/plain", "bad authorization request");
    };
    s.next += 1;
    let code = format!("code-{}-{}", s.next, profilegate::session::random_token(16));
    s.codes.insert(
        code.clone(),
        Authorization {
            redirect_uri: redirect_uri.clone(),
            nonce: q.get("nonce").cloned(),
            challenge: q.get("code_challenge").cloned(),
            sub: "alice".into(),
        },
    );
    let mut target = url::Url::parse(redirect_uri).expect("redirect_uri");
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state)
        .append_pair("iss", s.callback_iss.as_deref().unwrap_or(&s.issuer));
    Response::builder()
        .status(302)
        .header("location", target.to_string())
        .body(Full::new(Bytes::new()))
        .expect("response")
}

fn token(
    s: &mut OpState,
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Response<Full<Bytes>> {
    s.counters.token += 1;
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let used = match authorization {
        Some(a) if a == basic => "client_secret_basic",
        Some(_) => return oauth_error(401, "invalid_client"),
        None if form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET) =>
        {
            "client_secret_post"
        }
        None => return oauth_error(401, "invalid_client"),
    };
    s.auth_used.push(used);
    if !s.auth_methods.contains(&used) {
        return oauth_error(401, "invalid_client");
    }
    if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        return refresh(s, form);
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(400, "unsupported_grant_type");
    }
    let Some(code) = form.get("code") else {
        return oauth_error(400, "invalid_request");
    };
    if s.used_codes.contains(code) {
        return oauth_error(400, "invalid_grant");
    }
    let Some(auth) = s.codes.remove(code) else {
        return oauth_error(400, "invalid_grant");
    };
    s.used_codes.push(code.clone());
    if form.get("redirect_uri") != Some(&auth.redirect_uri) {
        return oauth_error(400, "invalid_grant");
    }
    let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    if auth.challenge.as_deref() != Some(URL_SAFE_NO_PAD.encode(digest.as_ref()).as_str()) {
        return oauth_error(400, "invalid_grant");
    }
    let ctx = TokenContext {
        issuer: s.issuer.clone(),
        client_id: CLIENT_ID.into(),
        nonce: auth.nonce,
        now: profilegate::session::now_secs(),
    };
    let id_token = (s.forge)(&ctx, &s.keys);
    let access_token = format!("at-{}", profilegate::session::random_token(16));
    let refresh_token = format!("rt-{}", profilegate::session::random_token(16));
    s.refresh_tokens
        .insert(refresh_token.clone(), auth.sub.clone());
    s.access_tokens.insert(access_token.clone(), auth.sub);
    s.issued.push(id_token.clone());
    s.issued.push(access_token.clone());
    s.issued.push(refresh_token.clone());
    json_reply(
        200,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
            "refresh_token": refresh_token,
        }),
    )
}

/// The `refresh_token` grant (client already authenticated): the set error, or new tokens for
/// the refresh token's subject (the refresh token is not rotated).
fn refresh(s: &mut OpState, form: &HashMap<String, String>) -> Response<Full<Bytes>> {
    s.refreshes += 1;
    if let Some((status, error)) = s.refresh_error {
        return oauth_error(status, error);
    }
    let Some(sub) = form
        .get("refresh_token")
        .and_then(|t| s.refresh_tokens.get(t))
        .cloned()
    else {
        return oauth_error(400, "invalid_grant");
    };
    let ctx = TokenContext {
        issuer: s.issuer.clone(),
        client_id: CLIENT_ID.into(),
        nonce: None,
        now: profilegate::session::now_secs(),
    };
    let id_token = match &s.refresh_forge {
        Some(forge) => forge(&ctx, &s.keys),
        None => s.keys.main().es256(&ctx.claims(&sub)),
    };
    let access_token = format!("at-{}", profilegate::session::random_token(16));
    s.access_tokens.insert(access_token.clone(), sub);
    s.issued.push(id_token.clone());
    s.issued.push(access_token.clone());
    json_reply(
        200,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }),
    )
}
