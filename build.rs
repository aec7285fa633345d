//! Build script: records the git commit the binary is built from, for `profilegate --version`:
//! `BUILD_GIT_COMMIT`, 12 hex digits, or "unknown" outside a git checkout. A build without
//! `.git` (the Dockerfile's: `.dockerignore` leaves it out) passes the commit in the
//! environment variable of the same name (`docker build --build-arg BUILD_GIT_COMMIT=...`);
//! when set and not empty it wins over git and must be 7 to 40 hex digits. Not a
//! `PROFILEGATE_*` name: cargo also sets it in the environment of the tests it runs, and
//! profilegate refuses unknown `PROFILEGATE_*` variables.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The commit given in the environment (`BUILD_GIT_COMMIT`), cut to 12 hex digits; `None` when
/// unset or empty. Anything but 7 to 40 hex digits stops the build with the reason.
fn commit_from_environment() -> Option<String> {
    let given = std::env::var("BUILD_GIT_COMMIT").ok()?;
    let given = given.trim().to_ascii_lowercase();
    if given.is_empty() {
        return None;
    }
    if !(7..=40).contains(&given.len()) || !given.bytes().all(|b| b.is_ascii_hexdigit()) {
        panic!("BUILD_GIT_COMMIT={given:?}: expected a git commit of 7 to 40 hex digits (git rev-parse HEAD)");
    }
    Some(given.chars().take(12).collect())
}

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_GIT_COMMIT");
    let commit = commit_from_environment()
        .or_else(|| {
            git(&["rev-parse", "--short=12", "HEAD"])
                .filter(|c| c.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
    // Built again when HEAD moves: HEAD itself, the branch it names, and packed refs, each
    // where git keeps it (`--git-path`: in a linked worktree HEAD is the worktree's own, the
    // refs are the main repository's). Only files that exist are named: cargo reruns a build
    // script at every build for a missing one.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = [Some("HEAD"), Some("packed-refs"), branch.as_deref()];
    for name in watched.into_iter().flatten() {
        let Some(file) = git(&["rev-parse", "--git-path", name]).map(PathBuf::from) else {
            continue;
        };
        if file.is_file() {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
