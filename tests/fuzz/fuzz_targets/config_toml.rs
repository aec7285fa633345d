//! Configuration parsing (`Config::from_toml`): any text gives a config or a list of errors,
//! never a panic, and a parsed config's `Debug` never shows its secrets.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use profilegate::config::{Config, Secret};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `*_file` keys read files: keep the file system out of the fuzzing by turning them into
    // unknown keys (which still exercises everything around them).
    let text = text.replace("_file", "_fyle");
    let env: &[(&str, &str)] = &[];
    match Config::from_toml(&text, env, Path::new("/nonexistent/profilegate-fuzz")) {
        Ok(config) => {
            // Debug does not depend on the secrets at all: changing them changes nothing.
            let mut other = config.clone();
            if other.oidc.client_secret.is_some() {
                other.oidc.client_secret = Some(Secret::new("another client secret"));
            }
            if other.oidc.client_key_pem.is_some() {
                other.oidc.client_key_pem = Some(Secret::new("another client key"));
            }
            other.session.secrets = vec![vec![0x5a; 32]; config.session.secrets.len()];
            assert_eq!(
                format!("{config:?}"),
                format!("{other:?}"),
                "Debug shows a secret"
            );
            let _ = config.warnings();
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error without a message");
            let _ = errors.to_string();
        }
    }
});
