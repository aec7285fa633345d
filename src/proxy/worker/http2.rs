//! HTTP/2 from the client, for the worker: the h2c preface on a plain connection
//! (`server.h2c`, prior knowledge, RFC 9113 §3.3) and the request target turned into the
//! origin form the gate reads (`:authority` becomes `Host`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{HeaderValue, COOKIE, HOST};
use http::uri::PathAndQuery;
use http::{Method, Request, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What a client speaking HTTP/2 with prior knowledge sends first.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads the connection's first bytes, as long as they could be the HTTP/2 preface: true
/// when they are. The bytes read are given back by the returned stream.
pub(super) async fn detect<S: AsyncRead + Unpin>(mut stream: S) -> io::Result<(Prefixed<S>, bool)> {
    let mut first = [0u8; PREFACE.len()];
    let mut len = 0;
    while len < PREFACE.len() {
        let n = stream.read(&mut first[len..]).await?;
        if n == 0 || first[..len + n] != PREFACE[..len + n] {
            len += n;
            break;
        }
        len += n;
    }
    let h2 = first[..len] == PREFACE[..];
    let stream = Prefixed {
        first: first[..len].to_vec(),
        at: 0,
        inner: stream,
    };
    Ok((stream, h2))
}

/// A stream whose first bytes were already read: they are read again first.
pub(super) struct Prefixed<S> {
    first: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.first.len() {
            let rest = &this.first[this.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// An HTTP/2 request as an HTTP/1.1 one would arrive: the target in origin form (path and
/// query), `:authority` as `Host` (RFC 9113 §8.3.1: it wins over a `Host` field) and the
/// `Cookie` fields a browser sends one per cookie joined into one (§8.2.3: an HTTP/1.1
/// upstream reads one line). A CONNECT keeps its authority form, which the gate refuses.
pub(super) fn origin_form<B>(req: Request<B>) -> Request<B> {
    if req.method() == Method::CONNECT {
        return req;
    }
    let (mut head, body) = req.into_parts();
    if let Some(authority) = head.uri.authority() {
        // `:authority` has no user info in HTTP/2 (§8.3.1); drop any a client sent.
        let host = authority.as_str().rsplit('@').next().unwrap_or_default();
        if let Ok(host) = HeaderValue::from_str(host) {
            head.headers.insert(HOST, host);
        }
    }
    let mut cookies = head.headers.get_all(COOKIE).iter();
    if cookies.next().is_some() && cookies.next().is_some() {
        let joined: Vec<&[u8]> = head
            .headers
            .get_all(COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if let Ok(one) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
            head.headers.insert(COOKIE, one);
        }
    }
    if head.uri.scheme().is_some() || head.uri.authority().is_some() {
        let path = head
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        head.uri = Uri::from(path);
    }
    Request::from_parts(head, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_target_becomes_origin_form_with_host() {
        let req = Request::builder()
            .version(http::Version::HTTP_2)
            .uri("https://app.example:8443/a/b?x=1")
            .header(HOST, "other.example")
            .body(())
            .expect("request");
        let req = origin_form(req);
        assert_eq!(req.uri().to_string(), "/a/b?x=1");
        assert_eq!(req.headers()[HOST], "app.example:8443");
        assert_eq!(req.headers().get_all(HOST).iter().count(), 1);
    }

    #[test]
    fn cookie_fields_are_joined_into_one() {
        let req = Request::builder()
            .version(http::Version::HTTP_2)
            .uri("https://app.example/")
            .header(COOKIE, "a=1")
            .header(COOKIE, "b=2")
            .header(COOKIE, "c=3")
            .body(())
            .expect("request");
        let req = origin_form(req);
        let cookies: Vec<_> = req.headers().get_all(COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
    }

    #[test]
    fn connect_keeps_its_authority_form() {
        let req = Request::builder()
            .method(Method::CONNECT)
            .uri("evil.example:443")
            .body(())
            .expect("request");
        assert_eq!(origin_form(req).uri().to_string(), "evil.example:443");
    }

    #[tokio::test]
    async fn preface_is_detected_and_replayed() {
        let mut sent = PREFACE.to_vec();
        sent.extend_from_slice(b"frames");
        let (mut stream, h2) = detect(&sent[..]).await.expect("read");
        assert!(h2);
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, sent);

        let (mut stream, h2) = detect(&b"GET / HTTP/1.1\r\n\r\n"[..]).await.expect("read");
        assert!(!h2);
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, b"GET / HTTP/1.1\r\n\r\n");

        let (_, h2) = detect(&b"PRI * HT"[..]).await.expect("read");
        assert!(!h2, "a short preface is not HTTP/2");
    }
}
