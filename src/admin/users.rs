//! The administrator's view of user records (DESIGN §12): `GET /admin/user?sub=S[&issuer=I]`
//! (the record as JSON, the export line's shape), `DELETE` of the same (erase), `GET
//! /admin/export` (every record as NDJSON, streamed page by page) and `POST /admin/import`
//! (NDJSON read as it arrives, `import.rs`). Each request writes one audit line.

use std::io;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;

use super::import::{ImportStopped, LineImporter};
use super::reply::{json, text, AdminBody};
use super::{audit, AdminContext, Caller};
use crate::store::{export_line, StoreError, UserKey};

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
        Err(refused) => return refused,
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
        Err(refused) => return refused,
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
    let (pages, receiver) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(PAGES_AHEAD);
    let store = ctx.store.clone();
    let caller = caller.clone();
    tokio::spawn(async move {
        let mut after: Option<UserKey> = None;
        let mut sent = 0u64;
        loop {
            let page = match store.scan(after.as_ref(), EXPORT_PAGE).await {
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
            let full = page.len() >= EXPORT_PAGE;
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
    let body = StreamBody::new(Pages(receiver)).boxed_unsync();
    super::reply::respond(200, "application/x-ndjson", body)
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
            if let Err(stop) = importer.feed(ctx.store.as_ref(), &data).await {
                return stopped(caller, stop);
            }
        }
    }
    match importer.finish(ctx.store.as_ref()).await {
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
fn user_of(ctx: &AdminContext, uri: &Uri) -> Result<UserKey, Response<AdminBody>> {
    let mut sub = None;
    let mut issuer = None;
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match &*name {
            "sub" => sub = Some(value.into_owned()),
            "issuer" => issuer = Some(value.into_owned()),
            other => {
                return Err(bad_request(&format!(
                    "unknown query parameter {other:?}: use sub and, optionally, issuer"
                )))
            }
        }
    }
    match sub {
        Some(sub) if !sub.is_empty() => {
            Ok(ctx.user_key(issuer.as_deref().filter(|i| !i.is_empty()), &sub))
        }
        _ => Err(bad_request(
            "the query needs sub=<the user's subject> (and optionally issuer=<URL>)",
        )),
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
