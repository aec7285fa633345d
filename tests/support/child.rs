//! Child processes the tests start (the test OP, the custom UI app, node and python helpers,
//! profilegate's command line): every wait on one has a deadline, and a child that misses it is
//! killed and the test fails with what the child wrote, instead of hanging the run.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server child may take to print its ready line (the test OP starts in about a
/// second; the rest is room for a machine busy with parallel builds).
pub const READY_LINE_LIMIT: Duration = Duration::from_secs(20);

/// How long a short command (a JWT check, `profilegate check`, key generation) may run.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// A child's stderr, written to a file so it never blocks the child and stays readable while
/// the child runs and after it died.
pub struct StderrFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl StderrFile {
    fn new() -> (StderrFile, File) {
        let dir = tempfile::tempdir().expect("tempdir for a child's stderr");
        let path = dir.path().join("stderr");
        let file = File::create(&path).expect("stderr file");
        (StderrFile { path, _dir: dir }, file)
    }

    /// Everything the child wrote to stderr so far.
    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }
}

/// A server child that printed its ready line: its stdin is a pipe (the test OP and the custom
/// UI app exit when it closes, so a killed test leaves no orphan).
pub struct Started {
    pub child: Child,
    pub stdin: ChildStdin,
    pub ready: String,
    pub stderr: StderrFile,
}

/// Spawns `cmd` and waits at most `limit` for its first stdout line. On a deadline, an early
/// exit or a spawn error the child is killed and the test fails with its stderr. Whatever the
/// child prints on stdout after that line is read and dropped (a full pipe would block it).
pub fn start_with_ready_line(cmd: &mut Command, what: &str, limit: Duration) -> Started {
    let (stderr, stderr_file) = StderrFile::new();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr_file)
        .spawn()
        .unwrap_or_else(|e| panic!("{what} could not be started: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    // A blocking read has no timeout of its own: a thread reads, the test waits on a channel.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let first = reader.read_line(&mut line).map(|_| line);
        let _ = tx.send(first);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let started = Instant::now();
    let failure = match rx.recv_timeout(limit) {
        Ok(Ok(line)) if !line.trim().is_empty() => {
            return Started {
                child,
                stdin,
                ready: line,
                stderr,
            };
        }
        Ok(Ok(_)) => "closed its stdout without a ready line".to_owned(),
        Ok(Err(e)) => format!("could not be read from: {e}"),
        Err(_) => format!(
            "printed no ready line within {} s",
            started.elapsed().as_secs()
        ),
    };
    let status = stop(&mut child);
    panic!(
        "{what} {failure} ({status}); its stderr:\n{}",
        stderr.read()
    );
}

impl Started {
    /// Kills the child and fails the test with `why` and the child's stderr.
    pub fn fail(mut self, why: &str) -> ! {
        let status = stop(&mut self.child);
        panic!("{why} ({status}); its stderr:\n{}", self.stderr.read());
    }
}

/// Kills `child` (if it still runs) and reaps it; says how it ended.
fn stop(child: &mut Child) -> String {
    if let Ok(Some(status)) = child.try_wait() {
        return format!("exited: {status}");
    }
    let _ = child.kill();
    match child.wait() {
        Ok(status) => format!("killed: {status}"),
        Err(e) => format!("killed; not reaped: {e}"),
    }
}

/// Runs `cmd` to its end, like [`Command::output`], but for at most `limit`: past it the child
/// is killed and the test fails with its stdout and stderr. Only a spawn error is returned (a
/// caller may skip when a tool is missing).
pub fn output_within(cmd: &mut Command, what: &str, limit: Duration) -> std::io::Result<Output> {
    let dir = tempfile::tempdir().expect("tempdir for a child's output");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()?;
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => break None,
        }
    };
    let read = |path: &PathBuf| {
        let mut bytes = Vec::new();
        let _ = File::open(path).and_then(|mut f| f.read_to_end(&mut bytes));
        bytes
    };
    let Some(status) = status else {
        let how = stop(&mut child);
        panic!(
            "{what} did not finish within {} s ({how}); its stdout:\n{}\nits stderr:\n{}",
            limit.as_secs(),
            String::from_utf8_lossy(&read(&out_path)),
            String::from_utf8_lossy(&read(&err_path)),
        );
    };
    Ok(Output {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    })
}

/// Stops `child`: `signal` (`"-TERM"`, `"-INT"`), then SIGKILL if it has not ended within 5 s;
/// always reaped.
pub fn stop_gracefully(mut child: Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
