//! `/.profilegate/jwks.json`: the public key of the profile JWT (and of the custom UI's
//! tokens), for the upstream to verify them.

use super::super::gate::Gate;
use super::super::reply::Reply;

pub fn keys(gate: &Gate) -> Reply {
    Reply::json_text(200, gate.key.jwks_json().to_owned())
}
