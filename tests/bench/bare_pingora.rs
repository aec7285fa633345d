//! A bare reverse proxy on profilegate's stack: the floor under profilegate's hot path (issue 6).
//!
//! `tests/bench/run.sh` runs it beside profilegate with the same settings (pingora's server, one
//! single-threaded service per worker, each on its own SO_REUSEPORT socket through profilegate's
//! `OwnSocket`, pooled upstream keep-alive, mimalloc) and no code of profilegate's own, so the
//! table shows how much of profilegate's cost per request is its own. Two engines:
//!
//! - `hyper` (default): what profilegate runs: pingora accepts, hyper speaks HTTP/1.1 on each
//!   connection and forwards through a per-worker pool of hyper client connections;
//! - `proxy`: pingora-proxy's `ProxyHttp` with no filters, what profilegate ran on before
//!   (docs/performance.md compares the two).
//!
//!     bare-pingora LISTEN UPSTREAM [THREADS [ENGINE]]      e.g. bare-pingora 127.0.0.1:8081 127.0.0.1:8080 2 hyper

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use pingora::apps::ServerApp;
use pingora::listeners::TcpSocketOptions;
use pingora::prelude::*;
use pingora::protocols::Stream;
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;
use pingora::upstreams::peer::HttpPeer;

/// The same allocator as profilegate, so the difference between the two is profilegate's code.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// pingora-proxy with no filters of its own.
struct BareProxy {
    peer: HttpPeer,
}

#[async_trait]
impl ProxyHttp for BareProxy {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }
}

/// hyper on pingora's accepted connections, forwarding through one pool per worker.
struct BareHyper {
    upstream: SocketAddr,
    pool: Arc<Mutex<Vec<SendRequest<Incoming>>>>,
}

impl BareHyper {
    async fn forward(
        upstream: SocketAddr,
        pool: &Mutex<Vec<SendRequest<Incoming>>>,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
        let idle = {
            let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.retain(|s| !s.is_closed());
            pool.iter()
                .rposition(SendRequest::is_ready)
                .map(|i| pool.swap_remove(i))
        };
        let mut sender = match idle {
            Some(sender) => sender,
            None => {
                let stream = tokio::net::TcpStream::connect(upstream).await?;
                stream.set_nodelay(true)?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                sender
            }
        };
        let resp = sender.send_request(req).await?;
        pool.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
        Ok(resp)
    }
}

#[async_trait]
impl ServerApp for BareHyper {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let (upstream, pool) = (self.upstream, self.pool.clone());
        let service = hyper::service::service_fn(move |req| {
            let pool = pool.clone();
            async move {
                Ok::<_, Infallible>(match Self::forward(upstream, &pool, req).await {
                    Ok(resp) => resp.map(http_body_util::Either::Left),
                    Err(_) => {
                        let mut resp = http::Response::new(http_body_util::Either::Right(
                            http_body_util::Empty::new(),
                        ));
                        *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
                        resp
                    }
                })
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
        None
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bare-pingora LISTEN UPSTREAM [THREADS [hyper|proxy]]");
        std::process::exit(2);
    };
    let threads = match args.get(3).map(|t| t.parse::<usize>()) {
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        Some(Ok(t)) if t > 0 => t,
        Some(_) => {
            eprintln!("bare-pingora: THREADS must be a positive whole number");
            std::process::exit(2);
        }
    };
    let engine = args.get(4).map_or("hyper", String::as_str);
    if !matches!(engine, "hyper" | "proxy") {
        eprintln!("bare-pingora: ENGINE must be hyper or proxy");
        std::process::exit(2);
    }
    let Ok(upstream) = upstream.parse::<SocketAddr>() else {
        eprintln!("bare-pingora: UPSTREAM must be IP:PORT");
        std::process::exit(2);
    };
    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut reuse_port = TcpSocketOptions::default();
    reuse_port.so_reuseport = Some(true);
    for worker in 0..threads {
        if engine == "proxy" {
            let mut peer = HttpPeer::new(upstream, false, String::new());
            peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
            let mut proxy = http_proxy_service_with_name(
                &server.configuration,
                BareProxy { peer },
                &format!("bare pingora-proxy {worker}"),
            );
            proxy.add_tcp_with_settings(listen, reuse_port.clone());
            proxy.threads = Some(1);
            server.add_service(profilegate::server::OwnSocket(proxy));
        } else {
            let app = BareHyper {
                upstream,
                pool: Arc::default(),
            };
            let mut service = Service::new(format!("bare hyper {worker}"), app);
            service.add_tcp_with_settings(listen, reuse_port.clone());
            service.threads = Some(1);
            server.add_service(profilegate::server::OwnSocket(service));
        }
    }
    server.run(pingora::server::RunArgs::default());
}
