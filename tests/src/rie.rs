//! A binary under AWS's own Runtime Interface Emulator (`aws-lambda-rie`, what `sam local
//! invoke` runs inside its container; the aws-sam-cli wheel in `.venv` ships it). The emulator
//! serves the Lambda Invoke API on 127.0.0.1 and the Runtime API to the binary on another
//! loopback port; it is stopped (with the binary under it) on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

use crate::http_client::{self, RawResponse};
use crate::process::Proc;

/// The emulator shipped in the tools venv for this machine's architecture (or `AWS_LAMBDA_RIE`).
pub fn emulator() -> PathBuf {
    if let Some(p) = std::env::var_os("AWS_LAMBDA_RIE") {
        return p.into();
    }
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    };
    let lib = crate::repo_root().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.filter_map(Result::ok)
            .map(|d| {
                d.path()
                    .join("site-packages/samcli/local/rapid")
                    .join(format!("aws-lambda-rie-{arch}"))
            })
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "aws-lambda-rie not found under {} (make tools installs aws-sam-cli)",
            lib.display()
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A running emulator with one binary under it.
pub struct Rie {
    proc: Proc,
    addr: String,
    log: PathBuf,
}

impl Rie {
    /// Start `bin` under the emulator; its output (emulator lines and the binary's logs) goes
    /// to `log`. The binary gets a region, dummy credentials, no instance metadata, the embedded
    /// backend and the local token, plus `env`.
    pub fn start(bin: &Path, log: &Path, env: &[(&str, &str)]) -> Rie {
        let addr = format!("127.0.0.1:{}", free_port());
        let api = format!("127.0.0.1:{}", free_port());
        let out = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", log.display()));
        let mut cmd = Command::new(emulator());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .env("EXTENSION_BACKEND", "memory")
            .env("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", "local-dev-token")
            .args(["--runtime-interface-emulator-address", &addr])
            .args(["--runtime-api-address", &api])
            .arg(bin)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc =
            Proc::spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot start the emulator: {e}"));
        let ready = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(&addr).is_ok()
        });
        assert!(ready, "the emulator did not listen on {addr}");
        Rie {
            proc,
            addr,
            log: log.to_owned(),
        }
    }

    /// One Invoke: `payload` as the body, the client context (JSON) base64-encoded in
    /// `X-Amz-Client-Context` like the Invoke API, an optional `X-Amzn-Trace-Id`.
    pub fn invoke(
        &self,
        payload: &[u8],
        client_context: Option<&[u8]>,
        trace: Option<&str>,
    ) -> RawResponse {
        let cc = client_context.map(|c| base64::engine::general_purpose::STANDARD.encode(c));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(cc) = &cc {
            headers.push(("X-Amz-Client-Context", cc));
        }
        if let Some(t) = trace {
            headers.push(("X-Amzn-Trace-Id", t));
        }
        http_client::send(
            &self.addr,
            "POST",
            "/2015-03-31/functions/function/invocations",
            &headers,
            payload,
        )
        .unwrap_or_else(|e| panic!("invoke through the emulator failed: {e}"))
    }

    /// Everything the emulator and the binary printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rie {
    fn drop(&mut self) {
        // SIGTERM lets the emulator stop the binary under it; Proc's drop then kills whatever is
        // left of the emulator itself.
        let _ = Command::new("kill")
            .args(["-TERM", &self.proc.id().to_string()])
            .status();
        self.proc.wait_timeout(Duration::from_secs(5));
    }
}
