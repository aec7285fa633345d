//! The test OP's RSA signing keys: made once with `openssl genpkey` and kept in cargo's
//! temporary directory for integration tests, so no OP start generates one (Node 20's
//! `generateKeyPairSync` can deadlock; see `tests/op/server.js`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::child::{output_within, COMMAND_LIMIT};

/// Which of the OP's two keys.
#[derive(Clone, Copy)]
pub enum OpKey {
    /// The key the OP signs with from the start (`signing_key_file`).
    Signing,
    /// The key of its first rotation (`rotation_key_file`).
    Rotation,
}

/// The PEM file of `which` key, made on first use; `None` when openssl is missing (the OP then
/// generates its key itself, asynchronously).
pub fn op_key_file(which: OpKey) -> Option<PathBuf> {
    static SIGNING: OnceLock<Option<PathBuf>> = OnceLock::new();
    static ROTATION: OnceLock<Option<PathBuf>> = OnceLock::new();
    let (cell, name) = match which {
        OpKey::Signing => (&SIGNING, "test-op-rsa.pem"),
        OpKey::Rotation => (&ROTATION, "test-op-rsa-rotation.pem"),
    };
    cell.get_or_init(|| make_key(name)).clone()
}

/// Reuses `name` when a test binary already made it; otherwise writes a key under a name of its
/// own and links it into place, so parallel test binaries never read a half-written file and
/// the first one to finish wins.
fn make_key(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    if path.exists() {
        return Some(path);
    }
    std::fs::create_dir_all(&dir).expect("cargo's temporary directory");
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let out = match output_within(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
            .arg("rsa_keygen_bits:2048")
            .arg("-out")
            .arg(&partial),
        "openssl genpkey",
        COMMAND_LIMIT,
    ) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("openssl not available ({e}): the test OP generates its own keys");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "openssl genpkey failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match std::fs::hard_link(&partial, &path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // A file system without hard links: a rename is atomic too (the last one wins).
        Err(_) => std::fs::rename(&partial, &path).expect("key file renamed into place"),
    }
    let _ = std::fs::remove_file(&partial);
    Some(path)
}
