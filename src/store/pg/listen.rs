//! How the replicas sharing one database tell each other that a record changed behind their
//! caches (an erase, an import): the writer runs `pg_notify` in the same transaction as the
//! write, so the notification goes out exactly when the change commits; every store instance
//! keeps one connection of its own (outside the pool) that `LISTEN`s and forwards what it
//! hears to the store's [`UserChanges`].
//!
//! The listening connection is remade when lost (with a growing pause, at most 5 s). While it
//! was gone, notifications may have been missed, so the caches are told to forget everyone
//! when it is lost and again once it listens anew.

use std::sync::Weak;
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use super::connect::DirectConnect;
use crate::store::changes::{UserChange, UserChanges};
use crate::store::key::UserKey;

/// The notification channel.
pub(super) const CHANNEL: &str = "profilegate_users";

/// PostgreSQL refuses payloads of 8000 bytes or more; a key that long is sent as "everyone".
const MAX_PAYLOAD: usize = 7900;

/// The payload naming `user`: `["issuer","subject"]`, or `*` (everyone) when too long.
pub(super) fn payload(user: &UserKey) -> String {
    let json = serde_json::to_string(&[&user.issuer, &user.subject]).unwrap_or_default();
    match json.is_empty() || json.len() > MAX_PAYLOAD {
        true => "*".to_owned(),
        false => json,
    }
}

/// What a payload asks to forget; anything unexpected forgets everyone (never too little).
fn change_of(payload: &str) -> UserChange {
    match serde_json::from_str::<(String, String)>(payload) {
        Ok((issuer, subject)) => UserChange::User(UserKey::new(issuer, subject)),
        Err(_) => UserChange::Everyone,
    }
}

/// Starts listening on `io` for as long as `changes` lives (the store).
pub(super) fn start(
    io: &tokio::runtime::Handle,
    direct: DirectConnect,
    changes: Weak<UserChanges>,
    target: String,
) {
    io.spawn(listen(direct, changes, target));
}

async fn listen(direct: DirectConnect, changes: Weak<UserChanges>, target: String) {
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
                            publish(&changes, &change_of(n.payload()));
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
        assert_eq!(change_of(&payload(&user)), UserChange::User(user));
        let long = UserKey::new("https://op.example", "x".repeat(MAX_PAYLOAD));
        assert_eq!(payload(&long), "*");
        assert_eq!(change_of("*"), UserChange::Everyone);
        assert_eq!(change_of("garbage"), UserChange::Everyone);
    }
}
