//! The test OP's side of back-channel logout: its configuration with the proxy registered for
//! it (`backchannel_logout_uri`, `backchannel_logout_session_required`), and a user signing out
//! at the OP itself (its end-session page and confirmation form, as a browser would).

use reqwest::StatusCode;
use serde_json::json;

use super::browser::{absolute, form_value, location, Browser};
use super::{CLIENT_ID, CLIENT_SECRET};

/// The path the OP posts logout tokens to, under the proxy's origin.
pub const BACKCHANNEL_PATH: &str = "/.profilegate/backchannel-logout";

/// `TestOp::start`'s `extra` for back-channel logout: one client whose callbacks are those of
/// proxies on `proxy_ports` (replicas behind one client registration) and whose logout tokens
/// go to the first one (the replica a load balancer would pick).
pub fn backchannel_op(proxy_ports: &[u16]) -> serde_json::Value {
    let origin = |port: &u16| format!("http://127.0.0.1:{port}");
    json!({
        "backchannel_logout": true,
        "clients": [{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": proxy_ports
                .iter()
                .map(|p| format!("{}/.profilegate/callback", origin(p)))
                .collect::<Vec<_>>(),
            "post_logout_redirect_uris": proxy_ports
                .iter()
                .map(|p| format!("{}/.profilegate/signed-out", origin(p)))
                .collect::<Vec<_>>(),
            "backchannel_logout_uri": format!("{}{BACKCHANNEL_PATH}", origin(&proxy_ports[0])),
            "backchannel_logout_session_required": true,
        }],
    })
}

impl Browser {
    /// Signs out at the OP `issuer` as a user would there: its end-session page, then "Yes,
    /// sign me out" (the confirmation form). The OP posts its logout tokens before it answers
    /// the form, so they have been delivered when this returns.
    pub async fn sign_out_at_op(&self, issuer: &str) {
        let end = format!("{issuer}/session/end");
        let page = self.navigate(&end).await;
        assert_eq!(page.status(), StatusCode::OK, "the OP's end-session page");
        let html = page.text().await.expect("end-session page");
        let action = html
            .split("id=\"op.logoutForm\"")
            .nth(1)
            .and_then(|form| form.split("action=\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no sign-out form on the OP's page:\n{html}"))
            .to_owned();
        let xsrf = form_value(&html, "xsrf");
        let confirmed = self
            .client
            .post(absolute(&end, &action))
            .header("accept", "text/html")
            .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
            .send()
            .await
            .expect("the OP's sign-out confirmation");
        assert!(
            confirmed.status().is_redirection(),
            "the OP's sign-out confirmation answered {}",
            confirmed.status()
        );
        let done = absolute(&end, &location(&confirmed));
        assert!(
            done.starts_with(issuer),
            "signed out at the OP, which stays on its own pages: {done}"
        );
    }
}
