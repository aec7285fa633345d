//! `profilegate users show|erase|export|import`: the admin API's user operations
//! (`admin/users.rs`) on the configured store, from the command line. `export` writes NDJSON to
//! standard output and `import` reads it (standard input or a file), so
//! `profilegate users export --config sled.toml | profilegate users import --config pg.toml`
//! moves every record from one store to another. Each command writes one audit line (who:
//! `cli:$USER`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{open_store, runtime, EXIT_FAILED, EXIT_REFUSED};
use crate::admin::import::LineImporter;
use crate::admin::{audit, Caller};
use crate::config::Config;
use crate::store::{export_line, ProfileStore, UserKey};

/// Records read per page of an export.
const EXPORT_PAGE: usize = 1000;

/// `profilegate users …`.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Print one user's record as JSON ({"issuer","sub","record"}); exit 1 when there is none.
    Show {
        /// The user's subject (`sub` claim).
        #[arg(long)]
        sub: String,
        /// The OP's issuer (default: oidc.issuer).
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Erase one user's record (answers, skips, counts); exit 1 when there is none.
    Erase {
        #[arg(long)]
        sub: String,
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Write every record as NDJSON to standard output.
    Export,
    /// Import NDJSON export lines (idempotent); exit 1 when a line was rejected.
    Import {
        /// Read this file instead of standard input.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// Runs `command` on the store of `config`.
pub fn run(config: &Config, command: UsersCommand) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let store = match open_store(config).await {
            Ok(store) => store,
            Err(code) => return code,
        };
        let caller = Caller::command_line();
        let code = match command {
            UsersCommand::Show { sub, issuer } => {
                show(store.as_ref(), &caller, &key(config, issuer, sub)).await
            }
            UsersCommand::Erase { sub, issuer } => {
                erase(store.as_ref(), &caller, &key(config, issuer, sub)).await
            }
            UsersCommand::Export => export(store.as_ref(), &caller).await,
            UsersCommand::Import { file } => import(&store, &caller, file).await,
        };
        if let Err(e) = store.sync().await {
            eprintln!("profilegate: the store could not be written to disk: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
        code
    })
}

fn key(config: &Config, issuer: Option<String>, sub: String) -> UserKey {
    UserKey::new(issuer.unwrap_or_else(|| config.oidc.issuer.clone()), sub)
}

fn failed(
    caller: &Caller,
    action: &str,
    user: Option<&UserKey>,
    e: impl std::fmt::Display,
) -> ExitCode {
    audit(caller, action, user, &format!("failed: {e}"));
    eprintln!("profilegate: {e}");
    ExitCode::from(EXIT_FAILED)
}

async fn show(store: &dyn ProfileStore, caller: &Caller, user: &UserKey) -> ExitCode {
    match store.load(user).await {
        Ok(Some(record)) => match export_line(user, &record) {
            Ok(line) => {
                audit(caller, "user.show", Some(user), "shown");
                match std::io::stdout().write_all(&line) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => failed(caller, "user.show", Some(user), e),
                }
            }
            Err(e) => failed(caller, "user.show", Some(user), e),
        },
        Ok(None) => {
            audit(caller, "user.show", Some(user), "not found");
            eprintln!("profilegate: no record for {user}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e) => failed(caller, "user.show", Some(user), e),
    }
}

async fn erase(store: &dyn ProfileStore, caller: &Caller, user: &UserKey) -> ExitCode {
    match store.erase(user).await {
        Ok(true) => {
            audit(caller, "user.erase", Some(user), "erased");
            println!("erased the record of {user}");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            audit(caller, "user.erase", Some(user), "not found");
            eprintln!("profilegate: no record for {user}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(e) => failed(caller, "user.erase", Some(user), e),
    }
}

async fn export(store: &dyn ProfileStore, caller: &Caller) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after: Option<UserKey> = None;
    let mut sent = 0u64;
    loop {
        let page = match store.scan(after.as_ref(), EXPORT_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                return failed(
                    caller,
                    "users.export",
                    None,
                    format!("after {sent} users: {e}"),
                )
            }
        };
        for (user, record) in &page {
            let written = export_line(user, record)
                .map_err(|e| e.to_string())
                .and_then(|line| out.write_all(&line).map_err(|e| e.to_string()));
            if let Err(e) = written {
                return failed(
                    caller,
                    "users.export",
                    None,
                    format!("after {sent} users: {e}"),
                );
            }
            sent += 1;
        }
        let full = page.len() >= EXPORT_PAGE;
        after = page.into_iter().last().map(|(user, _)| user);
        if !full {
            break;
        }
    }
    if let Err(e) = out.flush() {
        return failed(caller, "users.export", None, e);
    }
    audit(
        caller,
        "users.export",
        None,
        &format!("exported {sent} users"),
    );
    ExitCode::SUCCESS
}

async fn import(
    store: &std::sync::Arc<dyn ProfileStore>,
    caller: &Caller,
    file: Option<PathBuf>,
) -> ExitCode {
    let mut input: Box<dyn Read> = match &file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => {
                return failed(
                    caller,
                    "users.import",
                    None,
                    format!("{}: {e}", path.display()),
                )
            }
        },
        None => Box::new(std::io::stdin().lock()),
    };
    let mut importer = LineImporter::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // Blocking reads on the command's own thread: nothing else runs meanwhile.
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return failed(
                    caller,
                    "users.import",
                    None,
                    format!("reading the input: {e}"),
                )
            }
        };
        if let Err(stop) = importer.feed(store, &buffer[..n]).await {
            return failed(
                caller,
                "users.import",
                None,
                format!("stopped at line {}: {}", stop.line, stop.error),
            );
        }
    }
    let summary = match importer.finish(store).await {
        Ok(summary) => summary,
        Err(stop) => {
            return failed(
                caller,
                "users.import",
                None,
                format!("stopped at line {}: {}", stop.line, stop.error),
            )
        }
    };
    audit(
        caller,
        "users.import",
        None,
        &format!(
            "imported {}, unchanged {}, rejected {}",
            summary.imported, summary.unchanged, summary.rejected_count
        ),
    );
    println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    for rejected in &summary.rejected {
        eprintln!("line {}: {}", rejected.line, rejected.error);
    }
    match summary.rejected_count {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_REFUSED),
    }
}
