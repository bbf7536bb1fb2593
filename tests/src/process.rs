//! Start the project's real binaries for tests and benchmarks, and make sure they die with the
//! test (killed on drop).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process killed (and reaped) on drop.
pub struct Proc(Child);

impl Proc {
    /// Start `cmd`; the child is killed (and reaped) when the returned value is dropped.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        cmd.spawn().map(Proc)
    }
    /// Wait up to `timeout` for the child to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if self.exited() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.exited()
    }
    pub fn id(&self) -> u32 {
        self.0.id()
    }
    /// Has it exited already?
    pub fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Path of a workspace binary (built by `cargo build --workspace --bins`, which `make test`
/// does first). Binaries of this package are also found through `CARGO_BIN_EXE_*`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "binary {} not found: run `cargo test --workspace --no-run` first (make test does)",
        p.display()
    );
    p
}

fn stderr_target() -> Stdio {
    if std::env::var_os("TEST_CHILD_LOGS").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// Start a Lambda bootstrap against a Runtime API at `api` (`host:port`).
pub fn lambda(path: &PathBuf, api: &str, env: &[(&str, &str)]) -> Proc {
    let mut cmd = lambda_command(path, api, env);
    cmd.stderr(stderr_target());
    Proc(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display())),
    )
}

/// [`lambda`], with the binary's output (log lines on stderr, metrics on stdout) written to
/// `log`.
pub fn lambda_logged(path: &PathBuf, api: &str, env: &[(&str, &str)], log: &Path) -> Proc {
    let file = std::fs::File::create(log)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
    let out = file
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot share {}: {e}", log.display()));
    let mut cmd = lambda_command(path, api, env);
    cmd.stderr(file).stdout(out);
    Proc(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display())),
    )
}

fn lambda_command(path: &PathBuf, api: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(path);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test")
        .env("AWS_REGION", "us-east-1")
        // Never reach real AWS from a test: tests that want the emulator say `aws` and set
        // AWS_ENDPOINT_URL.
        .env("EXTENSION_BACKEND", "memory")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Start an HTTP server binary that prints `listening on http://ADDR` and return it with the
/// address (`127.0.0.1:port`). Pass `PORT=0` (env) or `--port 0` (args) to get a free port.
pub fn server(path: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let mut cmd = Command::new(path);
    cmd.args(args)
        .env("HOST", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr_target());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.trim().to_owned());
                sent = true;
            }
        }
    });
    let proc = Proc(child);
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{} did not start listening", path.display()));
    (proc, addr)
}
