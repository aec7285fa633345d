//! A bare pingora reverse proxy: the floor under profilegate's hot path (issue 6).
//!
//! `tests/bench/run.sh` runs it beside profilegate with the same pingora settings (one
//! single-threaded service per worker, each on its own SO_REUSEPORT socket through profilegate's
//! `OwnSocket`, pooled upstream keep-alive, mimalloc), so the table shows how much of
//! profilegate's cost per request is pingora's own.
//!
//!     bare-pingora LISTEN UPSTREAM [THREADS]      e.g. bare-pingora 127.0.0.1:8081 127.0.0.1:8080 2

use async_trait::async_trait;
use pingora::listeners::TcpSocketOptions;
use pingora::prelude::*;
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;
use pingora::upstreams::peer::HttpPeer;

/// The same allocator as profilegate, so the difference between the two is profilegate's code.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    peer: HttpPeer,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bare-pingora LISTEN UPSTREAM [THREADS]");
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
    let Ok(upstream) = upstream.parse::<std::net::SocketAddr>() else {
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
    let mut peer = HttpPeer::new(upstream, false, String::new());
    peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
    let mut reuse_port = TcpSocketOptions::default();
    reuse_port.so_reuseport = Some(true);
    for worker in 0..threads {
        let mut proxy = http_proxy_service_with_name(
            &server.configuration,
            Bare { peer: peer.clone() },
            &format!("bare pingora {worker}"),
        );
        proxy.add_tcp_with_settings(listen, reuse_port.clone());
        proxy.threads = Some(1);
        server.add_service(profilegate::server::OwnSocket(proxy));
    }
    server.run(pingora::server::RunArgs::default());
}
