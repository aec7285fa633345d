//! The `profilegate` command: run the proxy, or check a configuration file.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use profilegate::config::{Config, LogConfig, LogFormat, ProcessEnv};
use profilegate::log_format;
use tracing_subscriber::fmt::format::JsonFields;

/// mimalloc instead of glibc's malloc: the proxy allocates and frees many small buffers per
/// request from one thread per worker (docs/performance.md has the measurement). Built with
/// `no_thp`: with transparent huge pages each thread's heap would pin 2 MiB pages (RSS 61 MB
/// at start instead of 20 MB, measured).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `profilegate --version`: the package version and the git commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILD_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "profilegate",
    version = VERSION,
    about = "OpenID Connect reverse proxy with progressive profiling"
)]
struct Cli {
    /// Configuration file (TOML). Any key can be overridden by PROFILEGATE_<SECTION>_<KEY>.
    #[arg(long, short, global = true, default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Validate the configuration, report every error with its key, and exit.
    Check {
        /// Also run OpenID Connect discovery against the configured issuer (network) and
        /// report what would stop sign-ins: another issuer, no usable key, no client
        /// authentication in common.
        #[arg(long)]
        online: bool,
    },
    /// Show, erase, export or import user records on the configured store (sled: with
    /// profilegate stopped; PostgreSQL: also while it runs). Exit 0 done, 1 not found or
    /// rejected lines, 2 configuration or store error.
    Users {
        #[command(subcommand)]
        command: profilegate::cli::users::UsersCommand,
    },
    /// Print the question funnel's totals from the configured store (sled: with profilegate
    /// stopped; PostgreSQL: any time): shown, answered, skipped, invalid, completion, median.
    Stats {
        /// JSON (as GET /admin/stats) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config, &ProcessEnv) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!(
                "{}: {} configuration error(s):",
                cli.config.display(),
                errors.0.len()
            );
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Check { online } => match profilegate::server::check(&config) {
            Ok(()) => {
                println!("{}: configuration OK", cli.config.display());
                println!("  public URL  {}", config.server.public_url.origin());
                println!(
                    "  listen      {} (admin {})",
                    config.server.listen, config.server.admin_listen
                );
                println!("  upstream    {}", config.upstream.url);
                println!("  issuer      {}", config.oidc.issuer);
                for warning in config.warnings() {
                    println!("  warning: {warning}");
                }
                if online {
                    return check_online(&cli.config, &config);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                // With its causes (`upstream.jwt_key_file: <why the key was refused>`).
                eprintln!("{}: {:#}", cli.config.display(), anyhow::Error::from(e));
                ExitCode::from(2)
            }
        },
        Command::Users { command } => {
            init_logging(&config.log);
            profilegate::cli::users::run(&config, command)
        }
        Command::Stats { json } => {
            match profilegate::cli::stats::run(&config, json, &mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("profilegate stats: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run => match run(config, &cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "profilegate could not start");
                eprintln!("profilegate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `check --online`: discovery, as start-up runs it, with what it found or why it failed.
fn check_online(path: &std::path::Path, config: &Config) -> ExitCode {
    match profilegate::server::check_online(config) {
        Ok(found) => {
            println!(
                "  discovery   OK: the OP's metadata names issuer {:?}",
                found.issuer
            );
            println!("  client auth {}", found.token_endpoint_auth);
            println!(
                "  ID tokens   the OP's keys verify {}",
                found.usable_algs.join(", ")
            );
            println!(
                "  sign-out    {}",
                if found.end_session {
                    "at the OP too (end_session_endpoint)"
                } else {
                    "here only (the OP has no end_session_endpoint)"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {:#}", path.display(), anyhow::Error::from(e));
            ExitCode::from(2)
        }
    }
}

fn run(config: Config, path: &std::path::Path) -> anyhow::Result<()> {
    init_logging(&config.log);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    profilegate::server::run(config, path).context("start-up failed")
}

fn init_logging(config: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(config.filter())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.format {
        // Never colour in JSON: escape codes would end up inside the string values. The line
        // carries the request's id at the top (`log_format`, docs/logging.md).
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(log_format::json())
            .init(),
        // Colour only for a person at a terminal: in a file, a pipe or a journal the escape
        // codes are noise that breaks grep.
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal();
            builder
                .with_ansi(ansi)
                .event_format(log_format::text(ansi))
                .init()
        }
    }
}
