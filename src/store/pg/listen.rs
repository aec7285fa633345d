//! How the replicas sharing one database tell each other that a record changed behind their
//! caches (an erase, an import): the writer runs `pg_notify` in the same transaction as the
//! write, so the notification goes out exactly when the change commits; every store instance
//! keeps one connection of its own (outside the pool) that `LISTEN`s and forwards what it
//! hears to the store's [`UserChanges`].
//!
//! The writer waits (at most [`ECHO_WAIT`]) until its own notification comes back on its own
//! `LISTEN` connection: by then the server has sent it to every listener, so the other
//! replicas' caches forget the user within milliseconds; it then waits [`ECHO_GRACE`] more
//! before it answers, so the next request, wherever it goes, no longer sees the old record.
//!
//! The listening connection is remade when lost (with a growing pause, at most 5 s). While it
//! was gone, notifications may have been missed, so the caches are told to forget everyone
//! when it is lost and again once it listens anew.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::oneshot;

use tokio_postgres::AsyncMessage;

use super::connect::DirectConnect;
use crate::store::changes::{UserChange, UserChanges};
use crate::store::key::UserKey;

/// The notification channel.
pub(super) const CHANNEL: &str = "profilegate_users";

/// PostgreSQL refuses payloads of 8000 bytes or more; a key that long is sent as "everyone".
const MAX_PAYLOAD: usize = 7900;

/// How long a writer waits for its own notification to come back.
pub(super) const ECHO_WAIT: Duration = Duration::from_secs(1);

/// And then a little longer: the server sends a notification to each listener from that
/// listener's own server process, in no set order, and each replica takes it from its socket
/// on its own thread. Measured on a loaded 2-core machine (tests/replicas.rs), the other
/// replica heard it 7.5 ms after the writer's echo; an erase is rare, so it may wait this long.
pub(super) const ECHO_GRACE: Duration = Duration::from_millis(50);

/// The payload naming `user`: `["issuer","subject","echo"]` (`echo`: this store instance's
/// token for the writer waiting for it), or `*<echo>` (everyone) when too long.
pub(super) fn payload(user: &UserKey, echo: &str) -> String {
    let json = serde_json::to_string(&[&user.issuer, &user.subject, echo]).unwrap_or_default();
    match json.is_empty() || json.len() > MAX_PAYLOAD {
        true => format!("*{echo}"),
        false => json,
    }
}

/// What a payload asks to forget, and its echo token; anything unexpected forgets everyone
/// (never too little).
fn change_of(payload: &str) -> (UserChange, Option<String>) {
    if let Some(echo) = payload.strip_prefix('*') {
        return (UserChange::Everyone, Some(echo.to_owned()));
    }
    match serde_json::from_str::<(String, String, String)>(payload) {
        Ok((issuer, subject, echo)) => {
            (UserChange::User(UserKey::new(issuer, subject)), Some(echo))
        }
        Err(_) => (UserChange::Everyone, None),
    }
}

/// Writers waiting for their notification to come back, by echo token.
#[derive(Default)]
pub(super) struct Echoes {
    /// This instance's tokens start with it (several instances listen on one database).
    prefix: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

impl Echoes {
    pub(super) fn new() -> Self {
        Self {
            prefix: format!("{:016x}", rand::random::<u64>()),
            ..Self::default()
        }
    }

    /// A fresh token and what resolves when its notification comes back.
    pub(super) fn expect(&self) -> (String, oneshot::Receiver<()>) {
        let token = format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let (done, heard) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), done);
        (token, heard)
    }

    /// Stops waiting for `token` (the write failed, or the wait timed out).
    pub(super) fn forget(&self, token: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    fn heard(&self, token: &str) {
        if !token.starts_with(&self.prefix) {
            return;
        }
        let done = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// Starts listening on `io` for as long as `changes` lives (the store).
pub(super) fn start(
    io: &tokio::runtime::Handle,
    direct: DirectConnect,
    changes: Weak<UserChanges>,
    echoes: Arc<Echoes>,
    target: String,
) {
    io.spawn(listen(direct, changes, echoes, target));
}

async fn listen(
    direct: DirectConnect,
    changes: Weak<UserChanges>,
    echoes: Arc<Echoes>,
    target: String,
) {
    let mut listened_before = false;
    let mut pause = Duration::from_millis(100);
    loop {
        if changes.strong_count() == 0 {
            return;
        }
        let (client, mut connection) = match direct.connect().await {
            Ok(made) => made,
            Err(e) => {
                tracing::warn!(store = %target, error = %e,
                    "cannot connect to listen for other replicas' erases; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let statement = format!("LISTEN {CHANNEL}");
        let listening = client.batch_execute(&statement);
        let mut listening = std::pin::pin!(listening);
        let mut listens = false;
        loop {
            tokio::select! {
                done = &mut listening, if !listens => match done {
                    Ok(()) => {
                        listens = true;
                        pause = Duration::from_millis(100);
                        if listened_before {
                            // Whatever was erased meanwhile went unheard.
                            publish(&changes, &UserChange::Everyone);
                            tracing::info!(store = %target,
                                "listening again for other replicas' erases; caches dropped");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(store = %target, error = %e, "LISTEN failed; retrying");
                        break;
                    }
                },
                message = std::future::poll_fn(|cx| connection.as_mut().poll_message(cx)) => {
                    match message {
                        Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                            let (change, echo) = change_of(n.payload());
                            publish(&changes, &change);
                            if let Some(echo) = echo {
                                echoes.heard(&echo);
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(store = %target, error = %e,
                                "the connection listening for other replicas' erases was lost");
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        if listens {
            listened_before = true;
            publish(&changes, &UserChange::Everyone);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

fn publish(changes: &Weak<UserChanges>, change: &UserChange) {
    if let Some(changes) = changes.upgrade() {
        changes.publish(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_user_or_everyone() {
        let user = UserKey::new("https://op.example", "zoë\u{0}\"");
        assert_eq!(
            change_of(&payload(&user, "e1")),
            (UserChange::User(user), Some("e1".into()))
        );
        let long = UserKey::new("https://op.example", "x".repeat(MAX_PAYLOAD));
        assert_eq!(payload(&long, "e2"), "*e2");
        assert_eq!(change_of("*e2"), (UserChange::Everyone, Some("e2".into())));
        assert_eq!(change_of("garbage"), (UserChange::Everyone, None));
    }
}
