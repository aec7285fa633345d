//! The configuration both criterion benchmarks (hot_path.rs, store.rs) run with: one required
//! text question, and addresses nobody calls (nothing here talks to an OP or an upstream).

use std::path::Path;

use profilegate::config::Config;

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"

[upstream]
url = "http://127.0.0.1:3000"

[oidc]
issuer = "http://localhost:9000"
client_id = "profilegate"
client_secret = "bench-secret"

[session]
secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

[[profiling.questions]]
id = "company"
label = "Which company do you work for?"
type = "text"
required = true
"#;

/// The benchmarks' configuration, parsed as `profilegate check` would.
pub fn load() -> Config {
    let env: &[(&str, &str)] = &[];
    Config::from_toml(CONFIG, env, Path::new(".")).expect("bench config")
}
