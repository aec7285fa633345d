//! The policy step of a signed-in request: whether `[access]` and the matched routes let the
//! user through (the session's verdicts, computed once per session and profile revision), and
//! which `on_paths` questions are due on this path (asked just in time).

use std::sync::Arc;

use http::header::HOST;
use http::request::Parts;

use super::gate::Gate;
use super::sessions::SignedIn;
use crate::pipeline::Pending;
use crate::policy::{under_segment, Facts, RequestFacts, RouteMatch, Verdict};
use crate::profile::{answers_json, DueOnPath};
use crate::session::{now_secs, Session};

impl Gate {
    /// Whether `[access]` and the matched routes' rules let `user` through: the session's
    /// verdicts, computed once per session and profile revision; only a rule that reads
    /// `request` is evaluated here at each request. Reads the profile (an in-memory cache hit
    /// on the hot path) only when a rule reads answers.
    pub(super) async fn permits(
        &self,
        user: &SignedIn,
        req: &Parts,
        matched: RouteMatch,
    ) -> Result<bool, crate::store::StoreError> {
        if self.policy_open {
            return Ok(true);
        }
        let profile = match self.policy_reads_answers {
            true => Some(
                self.enricher
                    .for_session(&*self.store, &user.session)
                    .await?,
            ),
            false => None,
        };
        let answers = || {
            profile
                .as_ref()
                .map(|p| answers_json(p.answers.iter().map(|(id, answer)| (id, answer))))
                .unwrap_or_default()
        };
        let session = &user.session;
        let revision = profile.as_ref().map_or(0, |p| p.revision);
        let verdicts = user.verdicts(revision, || {
            self.policy.verdicts(&Facts {
                claims: &session.claims,
                groups: &session.groups,
                answers: &answers(),
                request: None,
            })
        });
        Ok(match self.policy.verdict(&verdicts, matched) {
            Verdict::Allow => true,
            Verdict::Deny => false,
            Verdict::PerRequest => {
                let host = req.headers.get(HOST).and_then(|h| h.to_str().ok());
                self.policy.permits(
                    matched,
                    &Facts {
                        claims: &session.claims,
                        groups: &session.groups,
                        answers: &answers(),
                        request: Some(RequestFacts {
                            method: req.method.as_str(),
                            path: req.uri.path(),
                            host: host.unwrap_or_default(),
                        }),
                    },
                )
            }
        })
    }
}

impl Gate {
    /// The `on_paths` questions due on `path` (normalized) that the session does not already
    /// have pending. The session's due list is computed from the stored record at most once
    /// per profile revision and minute; a path outside every `on_paths` prefix costs nothing.
    pub(super) async fn due_here(
        &self,
        user: &SignedIn,
        path: &str,
    ) -> Result<Vec<DueOnPath>, crate::store::StoreError> {
        let session = &user.session;
        let asked_here = |q: &crate::profile::Question| {
            q.on_paths.iter().any(|prefix| under_segment(path, prefix))
                && !session.pending.contains(&q.id)
        };
        if !self.engine.questions().iter().any(asked_here) {
            return Ok(Vec::new());
        }
        let now = now_secs();
        let revision = self
            .enricher
            .for_session(&*self.store, session)
            .await?
            .revision;
        let due = match user.cached_due(revision, now) {
            Some(due) => due,
            None => {
                let key = self.user_key(&session.sub);
                let record = self.store.load(&key).await?.unwrap_or_default();
                let due = self.engine.due_on_paths(
                    &record,
                    &session.claims,
                    &session.groups,
                    now,
                    session.login,
                );
                user.keep_due(revision, now, due)
            }
        };
        Ok(due
            .iter()
            .filter(|d| d.matches(path) && !session.pending.contains(&d.id))
            .cloned()
            .collect())
    }

    /// The session with the `due` questions added to its pending ones (asked just in time).
    pub(super) fn ask_just_in_time(&self, user: Arc<SignedIn>, due: &[DueOnPath]) -> Session {
        let mut session = user.into_session();
        for question in due {
            session.pending.push(question.id.clone());
            if question.required {
                session.required.push(question.id.clone());
            }
        }
        session
    }
}

/// What the session's pending questions plus the ones due on this path mean.
pub(super) fn with_due(pending: Pending, due: &[DueOnPath]) -> Pending {
    if due.iter().any(|d| d.required) {
        Pending::Required
    } else if !due.is_empty() && pending == Pending::Nothing {
        Pending::Optional
    } else {
        pending
    }
}
