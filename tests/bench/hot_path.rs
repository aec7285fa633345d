//! Criterion micro-benchmarks of the signed-in hot path, piece by piece, in the order a request
//! meets them: the edge checks (header line sizes, the path), cookie parsing and session unseal (and the opened-session cache that spares it),
//! the decision, the policy (path normalization, 20 routes, the session's verdict), the cached
//! profile view, the
//! profile JWT (cached, and signed when the cache cannot serve), then header stripping and
//! injection on the request's `http::HeaderMap`.
//!
//!   cargo bench --bench hot_path
//!
//! Not a test: `cargo test --all-targets` runs each benchmark once, only to prove it still works.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::Method;

use profilegate::enrich::{Enriched, Enricher};
use profilegate::jwt::SigningKey;
use profilegate::pipeline::{
    decide, is_navigation, Auth, Pending, RequestView, RouteFlags, Routes,
};
use profilegate::policy::{
    normalize, AccessRule, Facts, PathPattern, Policy, QuestionsMode, Route, RouteTable,
};
use profilegate::profile::AnswerValue;
use profilegate::proxy::prepare::{prepare_upstream_request, Identity};
use profilegate::proxy::{edge, Peer, Sessions};
use profilegate::session::{now_secs, CookieSealer, RequestCookies, Session};
use profilegate::store::{
    AnswerSource, ProfileRecord, ProfileStore, SledOptions, SledStore, StoredAnswer,
};

#[path = "config.rs"]
mod bench_config;

/// What a signed-in browser request looks like: a session, the app's own cookie, the usual
/// browser headers.
struct Fixture {
    sealer: CookieSealer,
    session: Session,
    cookie_header: String,
    request: http::request::Parts,
    enricher: Enricher,
    store: Arc<dyn ProfileStore>,
    enriched: Arc<Enriched>,
    routes: Routes,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let config = bench_config::load();
    let sealer = CookieSealer::new(
        &config.session,
        &config.server.public_url,
        config.oidc.login_timeout,
    );
    let mut session = sealer.new_session(
        "248289761001".into(),
        Some("jane@example.com".into()),
        Some("jane".into()),
        Some("Jane Doe".into()),
    );
    session.rev = 2;
    session.login = 1;
    let set_cookie = sealer.seal_session(&session);
    let sealed = cookie::Cookie::parse(set_cookie).expect("session cookie");
    let cookie_header = format!(
        "app_pref=dark; {}={}; _ga=GA1.1.123456789.1700000000",
        sealed.name(),
        sealed.value()
    );

    let mut request = http::Request::builder().uri("/app/dashboard?tab=1");
    for (name, value) in [
        ("Host", "app.example.com"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("Accept-Language", "en-GB,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Cookie", cookie_header.as_str()),
        ("Sec-Fetch-Mode", "navigate"),
        ("Connection", "keep-alive"),
    ] {
        request = request.header(name, value);
    }
    let request = request.body(()).expect("request").into_parts().0;

    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store: Arc<dyn ProfileStore> = Arc::new(
        rt.block_on(SledStore::open(
            &dir.path().join("data"),
            SledOptions::default(),
        ))
        .expect("store"),
    );
    let der = SigningKey::generate_pkcs8().expect("key");
    let key = SigningKey::from_pkcs8(&der).expect("key");
    let enricher = Enricher::new(
        Arc::new(key),
        "http://localhost:9000".into(),
        "http://127.0.0.1:8080".into(),
        "http://127.0.0.1:3000".into(),
        300,
        profilegate::config::DEFAULT_PROFILE_CACHE_USERS,
    );
    let answers = BTreeMap::from([(
        "company".to_owned(),
        StoredAnswer {
            value: AnswerValue::Text("Acme Corp".into()),
            answered_at: 1_764_115_200,
            question_version: 1,
            source: AnswerSource::User,
        },
    )]);
    let record = ProfileRecord {
        answers,
        logins: 1,
        first_login_at: 1_764_115_200,
        last_login_at: 1_764_115_200,
        revision: 2,
        ..ProfileRecord::default()
    };
    let enriched = enricher.update(&session.sub, Arc::new(record));

    Fixture {
        sealer,
        session,
        cookie_header,
        request,
        enricher,
        store,
        enriched,
        routes: Routes::new("/.profilegate"),
        _dir: dir,
    }
}

fn session_unseal(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("session");
    group.bench_function("parse_cookies", |b| {
        b.iter(|| {
            RequestCookies::parse([black_box(f.cookie_header.as_bytes())])
                .iter()
                .count()
        })
    });
    group.bench_function("open_session (parse + unseal + JSON: a cache miss)", |b| {
        b.iter(|| {
            let cookies = RequestCookies::parse([black_box(f.cookie_header.as_bytes())]);
            f.sealer.open_session(&cookies).expect("session")
        })
    });
    // What the proxy does per request: the opened-session cache, hit.
    let sessions = Sessions::new();
    group.bench_function("Sessions::open (parse + cache hit: the hot path)", |b| {
        b.iter(|| {
            let cookies = RequestCookies::parse([black_box(f.cookie_header.as_bytes())]);
            sessions
                .open(&f.sealer, &cookies, now_secs())
                .expect("session")
        })
    });
    group.finish();
}

fn pipeline_decide(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("pipeline");
    let method = Method::GET;
    group.bench_function("decide (signed in, forward)", |b| {
        b.iter(|| {
            let view = RequestView {
                method: &method,
                path: black_box("/app/dashboard"),
                is_navigation: true,
                route: RouteFlags::default(),
            };
            decide(&view, Auth::SignedIn(Pending::Nothing), &f.routes)
        })
    });
    group.bench_function("decide (reserved route)", |b| {
        b.iter(|| {
            let view = RequestView {
                method: &method,
                path: black_box("/.profilegate/api/pending"),
                is_navigation: false,
                route: RouteFlags::default(),
            };
            decide(&view, Auth::SignedIn(Pending::Nothing), &f.routes)
        })
    });
    group.bench_function("is_navigation + pending + decide", |b| {
        let req = &f.request;
        b.iter(|| {
            let h = |name: &str| req.headers.get(name).map(|v| v.as_bytes());
            let view = RequestView {
                method: &req.method,
                path: req.uri.path(),
                is_navigation: is_navigation(
                    &req.method,
                    h("accept"),
                    h("x-requested-with"),
                    h("sec-fetch-mode"),
                ),
                route: RouteFlags::default(),
            };
            let pending = f.session.pending(|id| id == "company");
            decide(&view, Auth::SignedIn(pending), &f.routes)
        })
    });
    group.finish();
}

/// 20 routes as a real deployment might have them: 10 public, 5 for a group, 5 never blocked
/// by questions, with `[access]` limited to a domain.
fn twenty_routes() -> Policy {
    let route = |path: &str, public: bool, questions: QuestionsMode, groups: &[&str]| Route {
        pattern: PathPattern::Prefix(path.into()),
        methods: Vec::new(),
        public,
        questions,
        access: AccessRule {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..AccessRule::default()
        },
    };
    let mut routes = Vec::new();
    for path in [
        "/healthz",
        "/static/",
        "/assets/",
        "/favicon.ico",
        "/robots.txt",
        "/public/",
        "/webhooks/stripe",
        "/docs/",
        "/status",
        "/.well-known/",
    ] {
        routes.push(route(path, true, QuestionsMode::Ask, &[]));
    }
    for path in [
        "/admin",
        "/billing/admin",
        "/reports",
        "/internal/",
        "/ops/",
    ] {
        routes.push(route(path, false, QuestionsMode::Ask, &["admins"]));
    }
    for path in ["/api/", "/graphql", "/ws/", "/events/", "/uploads/"] {
        routes.push(route(path, false, QuestionsMode::Skip, &[]));
    }
    Policy {
        access: AccessRule {
            email_domains: vec!["example.com".into()],
            ..AccessRule::default()
        },
        routes: RouteTable::new(routes),
        groups_claim: "groups".into(),
    }
}

/// The per-request policy work: normalize the path, match 20 routes, read the session's
/// cached verdict (computed once per session and profile revision, outside the loop).
fn policy(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy");
    let policy = twenty_routes();
    let claims = serde_json::json!({"email": "jane@example.com", "email_verified": true});
    let claims = claims.as_object().cloned().unwrap_or_default();
    let groups = vec!["staff".to_owned()];
    let answers = serde_json::Map::new();
    let verdicts = policy.verdicts(&Facts {
        claims: &claims,
        groups: &groups,
        answers: &answers,
        request: None,
    });
    for (name, path) in [
        ("no route matches (all 20 tried)", "/app/dashboard"),
        ("a skip route (16th)", "/api/v1/items"),
        ("a public route (1st)", "/healthz"),
        (
            "dot segments and an encoded slash",
            "/static/../admin%2Fusers",
        ),
    ] {
        group.bench_function(format!("normalize + 20 routes + verdict: {name}"), |b| {
            b.iter(|| {
                let path = normalize(black_box(path));
                let matched = policy.routes.matches("GET", &path);
                (matched, policy.verdict(&verdicts, matched))
            })
        });
    }
    // A rule that reads `request` cannot be cached: its CEL program runs at each request.
    let per_request = AccessRule {
        allow: Some(
            profilegate::policy::Expr::compile(
                r#"request.method == "GET" && "staff" in groups"#,
                profilegate::policy::Scope::Access,
                &|_| false,
            )
            .expect("compiles"),
        ),
        ..AccessRule::default()
    };
    group.bench_function(
        "an allow reading request (CEL, evaluated per request)",
        |b| {
            b.iter(|| {
                per_request.permits(&Facts {
                    claims: black_box(&claims),
                    groups: &groups,
                    answers: &answers,
                    request: Some(profilegate::policy::RequestFacts {
                        method: "GET",
                        path: "/reports",
                        host: "app.example.com",
                    }),
                })
            })
        },
    );
    group.bench_function("session verdicts (once per session and revision)", |b| {
        b.iter(|| {
            policy.verdicts(&Facts {
                claims: black_box(&claims),
                groups: &groups,
                answers: &answers,
                request: None,
            })
        })
    });
    group.finish();
}

fn profile_jwt(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("enrich");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    group.bench_function("for_session (cache hit)", |b| {
        b.to_async(&rt).iter(|| async {
            f.enricher
                .for_session(&*f.store, &f.session)
                .await
                .expect("cached")
        })
    });
    // Warm the JWT slot: from then on the same session gets the cached token.
    f.enricher.jwt(&f.enriched, &f.session).expect("jwt");
    group.bench_function("jwt (cached)", |b| {
        b.iter(|| f.enricher.jwt(black_box(&f.enriched), &f.session))
    });
    // Two sessions of one user in turn: the slot keeps one token, so every call signs.
    let mut other = f.session.clone();
    other.sid.push('x');
    let sessions = [f.session.clone(), other];
    let mut turn = 0;
    group.bench_function("jwt (signed: cache miss)", |b| {
        b.iter(|| {
            turn ^= 1;
            f.enricher.jwt(&f.enriched, &sessions[turn])
        })
    });
    group.finish();
}

fn headers(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("upstream");
    let peer = Peer::new(Some("203.0.113.7".parse().expect("ip")), &[]);
    let jwt = f.enricher.jwt(&f.enriched, &f.session);
    let identity = Identity::of(&f.session);
    group.bench_function("clone the headers (baseline, not in the others)", |b| {
        b.iter(|| black_box(&f.request.headers).clone())
    });
    group.bench_function("prepare_upstream_request (strip + inject)", |b| {
        b.iter_batched(
            || f.request.headers.clone(),
            |mut req| {
                prepare_upstream_request(
                    &mut req,
                    &peer,
                    Some(&identity),
                    Some((&f.enriched, jwt.clone())),
                    &f.sealer,
                    "http",
                );
                req
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn edge_checks(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("edge");
    group.bench_function("header line sizes + path (the request's)", |b| {
        b.iter(|| {
            let req = black_box(&f.request);
            (
                edge::oversized_header_line(&req.headers, 16 * 1024),
                edge::check_path(req.uri.path()),
            )
        })
    });
    group.bench_function("path check, percent-encoded UTF-8", |b| {
        b.iter(|| edge::check_path(black_box("/docs/caf%C3%A9/r%C3%A9sum%C3%A9%20final.pdf")))
    });
    group.finish();
}

fn hot_path(c: &mut Criterion) {
    let f = fixture();
    edge_checks(c, &f);
    session_unseal(c, &f);
    pipeline_decide(c, &f);
    policy(c);
    profile_jwt(c, &f);
    headers(c, &f);
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
