//! The administrator's view of user records (DESIGN §12): `GET /admin/user?sub=S[&issuer=I]`
//! (the record as JSON, the export line's shape), `DELETE` of the same (erase), `GET
//! /admin/export` (every record as NDJSON, streamed page by page) and `POST /admin/import`
//! (NDJSON read as it arrives, `import.rs`). Each request writes one audit line.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;

use super::auth::Caller;
use super::context::{audit, AdminContext};
use super::import::{ImportStopped, LineImporter};
use super::reply::{json, text, AdminBody};
use crate::store::{export_line, ProfileStore, StoreError, UserKey};

/// Records read per page of an export: one page (about 300 bytes a record) is held at a time,
/// plus [`PAGES_AHEAD`] waiting for a slow client.
pub const EXPORT_PAGE: usize = 1000;
const PAGES_AHEAD: usize = 2;

/// `GET /admin/user?sub=S[&issuer=I]`.
pub async fn show(
    ctx: &AdminContext,
    caller: &Caller,
    request: Request<Incoming>,
) -> Response<AdminBody> {
    let user = match user_of(ctx, request.uri()) {
        Ok(user) => user,
        Err(why) => return bad_request(&why),
    };
    match ctx.store.load(&user).await {
        Ok(Some(record)) => match export_line(&user, &record) {
            Ok(mut line) => {
                audit(caller, "user.show", Some(&user), "shown");
                line.pop();
                text(
                    200,
                    "application/json",
                    String::from_utf8_lossy(&line).into_owned(),
                )
            }
            Err(e) => store_failed(caller, "user.show", Some(&user), &e),
        },
        Ok(None) => {
            audit(caller, "user.show", Some(&user), "not found");
            not_found(&user)
        }
        Err(e) => store_failed(caller, "user.show", Some(&user), &e),
    }
}

/// `DELETE /admin/user?sub=S[&issuer=I]`: the record is erased, every replica's caches forget it.
pub async fn erase(
    ctx: &AdminContext,
    caller: &Caller,
    request: Request<Incoming>,
) -> Response<AdminBody> {
    let user = match user_of(ctx, request.uri()) {
        Ok(user) => user,
        Err(why) => return bad_request(&why),
    };
    match ctx.store.erase(&user).await {
        Ok(true) => {
            audit(caller, "user.erase", Some(&user), "erased");
            json(
                200,
                &serde_json::json!({"erased": true, "issuer": user.issuer, "sub": user.subject}),
            )
        }
        Ok(false) => {
            audit(caller, "user.erase", Some(&user), "not found");
            not_found(&user)
        }
        Err(e) => store_failed(caller, "user.erase", Some(&user), &e),
    }
}

/// `GET /admin/export`: NDJSON, one line per record, streamed as the store is paged through.
/// A store error midway ends the body early (the client sees a truncated chunked response).
pub async fn export(
    ctx: &AdminContext,
    caller: &Caller,
    _request: Request<Incoming>,
) -> Response<AdminBody> {
    let pages = export_pages(ctx.store.clone(), caller.clone(), EXPORT_PAGE);
    let body = StreamBody::new(pages).boxed_unsync();
    super::reply::respond(200, "application/x-ndjson", body)
}

/// The export as a stream of NDJSON chunks, one per page of `page_size` records, read from the
/// store by a task that stays at most [`PAGES_AHEAD`] pages ahead of the client. The audit line
/// is written when it ends.
fn export_pages(store: Arc<dyn ProfileStore>, caller: Caller, page_size: usize) -> Pages {
    let (pages, receiver) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(PAGES_AHEAD);
    tokio::spawn(async move {
        let mut after: Option<UserKey> = None;
        let mut sent = 0u64;
        loop {
            let page = match store.scan(after.as_ref(), page_size).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, exported = sent, "export stopped by a store error");
                    let _ = pages.send(Err(io::Error::other(e.to_string()))).await;
                    audit(
                        &caller,
                        "users.export",
                        None,
                        &format!("failed after {sent} users"),
                    );
                    return;
                }
            };
            let mut chunk = Vec::with_capacity(page.len() * 256);
            for (user, record) in &page {
                match export_line(user, record) {
                    Ok(line) => chunk.extend_from_slice(&line),
                    Err(e) => {
                        let _ = pages.send(Err(io::Error::other(e.to_string()))).await;
                        audit(
                            &caller,
                            "users.export",
                            None,
                            &format!("failed after {sent} users"),
                        );
                        return;
                    }
                }
            }
            let full = page.len() >= page_size;
            sent += page.len() as u64;
            after = page.into_iter().last().map(|(user, _)| user);
            if !chunk.is_empty()
                && pages
                    .send(Ok(Frame::data(Bytes::from(chunk))))
                    .await
                    .is_err()
            {
                audit(
                    &caller,
                    "users.export",
                    None,
                    &format!("client left after {sent} users"),
                );
                return;
            }
            if !full {
                break;
            }
        }
        audit(
            &caller,
            "users.export",
            None,
            &format!("exported {sent} users"),
        );
    });
    Pages(receiver)
}

/// `POST /admin/import`: NDJSON export lines, read as they arrive; answers
/// `{imported, unchanged, rejected:[{line, error}], rejected_count}`.
pub async fn import(
    ctx: &AdminContext,
    caller: &Caller,
    request: Request<Incoming>,
) -> Response<AdminBody> {
    let mut body = request.into_body();
    let mut importer = LineImporter::new();
    let stopped = |caller: &Caller, stop: ImportStopped| {
        audit(
            caller,
            "users.import",
            None,
            &format!("stopped at line {}: {}", stop.line, stop.error),
        );
        json(
            503,
            &serde_json::json!({
                "error": "store_unavailable",
                "message": format!("stopped at line {}: {}", stop.line, stop.error),
                "imported": stop.summary.imported,
                "unchanged": stop.summary.unchanged,
                "rejected": stop.summary.rejected,
                "rejected_count": stop.summary.rejected_count,
            }),
        )
    };
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                audit(caller, "users.import", None, "request body unreadable");
                return json(
                    400,
                    &serde_json::json!({"error": "bad_body", "message": format!("the request body could not be read: {e}")}),
                );
            }
        };
        if let Ok(data) = frame.into_data() {
            if let Err(stop) = importer.feed(&ctx.store, &data).await {
                return stopped(caller, stop);
            }
        }
    }
    match importer.finish(&ctx.store).await {
        Ok(summary) => {
            audit(
                caller,
                "users.import",
                None,
                &format!(
                    "imported {}, unchanged {}, rejected {}",
                    summary.imported, summary.unchanged, summary.rejected_count
                ),
            );
            json(200, &serde_json::to_value(&summary).unwrap_or_default())
        }
        Err(stop) => stopped(caller, stop),
    }
}

/// The export's pages as a stream for `StreamBody`.
struct Pages(mpsc::Receiver<Result<Frame<Bytes>, io::Error>>);

impl futures_core::Stream for Pages {
    type Item = Result<Frame<Bytes>, io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// The user named by `sub` (required) and `issuer` (the configured OP's by default).
fn user_of(ctx: &AdminContext, uri: &Uri) -> Result<UserKey, String> {
    let mut sub = None;
    let mut issuer = None;
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match &*name {
            "sub" => sub = Some(value.into_owned()),
            "issuer" => issuer = Some(value.into_owned()),
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}: use sub and, optionally, issuer"
                ))
            }
        }
    }
    match sub {
        Some(sub) if !sub.is_empty() => {
            Ok(ctx.user_key(issuer.as_deref().filter(|i| !i.is_empty()), &sub))
        }
        _ => {
            Err("the query needs sub=<the user's subject> (and optionally issuer=<URL>)".to_owned())
        }
    }
}

fn bad_request(message: &str) -> Response<AdminBody> {
    json(
        400,
        &serde_json::json!({"error": "bad_request", "message": message}),
    )
}

fn not_found(user: &UserKey) -> Response<AdminBody> {
    json(
        404,
        &serde_json::json!({"error": "not_found", "message": format!("no record for {user}")}),
    )
}

fn store_failed(
    caller: &Caller,
    action: &str,
    user: Option<&UserKey>,
    e: &StoreError,
) -> Response<AdminBody> {
    audit(caller, action, user, &format!("failed: {e}"));
    let status = match e {
        StoreError::Corrupt { .. } | StoreError::Invalid(_) => 500,
        _ => 503,
    };
    json(
        status,
        &serde_json::json!({"error": "store_error", "message": e.to_string()}),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_core::Stream;

    use super::*;
    use crate::store::{ProfileRecord, SledOptions, SledStore};

    async fn next(pages: &mut Pages) -> Option<Result<Frame<Bytes>, io::Error>> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut *pages).poll_next(cx)).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_export_streams_page_by_page_and_stays_a_few_pages_ahead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path(), SledOptions::default())
            .await
            .expect("store");
        let record = ProfileRecord {
            logins: 1,
            ..ProfileRecord::default()
        };
        for n in 0..205 {
            store
                .import(
                    &UserKey::new("https://op.example", format!("u{n:04}")),
                    &record,
                )
                .await
                .expect("import");
        }
        let store: Arc<dyn ProfileStore> = Arc::new(store);
        let mut pages = export_pages(store, Caller::command_line(), 10);
        // Nobody reads: the reader stops when PAGES_AHEAD pages wait (one more in its hands).
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(pages.0.len(), PAGES_AHEAD, "bounded, not the 21 pages");
        let mut lines = 0;
        let mut frames = 0;
        while let Some(frame) = next(&mut pages).await {
            let data = frame.expect("frame").into_data().expect("data");
            let in_frame = data.iter().filter(|b| **b == b'\n').count();
            assert!(in_frame <= 10);
            lines += in_frame;
            frames += 1;
        }
        assert_eq!((lines, frames), (205, 21));
    }
}
