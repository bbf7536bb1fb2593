//! `conformance-server --mode diy|connectors --port N`: the reference module over HTTP with
//! system token `SYS_TOKEN` (connector id `conn1`), on 127.0.0.1. `--port 0` picks a free port
//! and prints it.

use integration_tests::reference::{self, Mode, SYSTEM_TOKEN};
use integrator_lambda::transport::system_token::TokenSet;
use std::process::ExitCode;

// Many calls at once: an arena per thread, large blocks kept apart (`integrator_lambda::memory`).
integrator_lambda::server_heap!();

fn main() -> ExitCode {
    let mut mode = Mode::Diy;
    let mut port: u16 = 8080;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        match (a.as_str(), value) {
            ("--mode", Some(v)) => match v.parse() {
                Ok(m) => mode = m,
                Err(e) => return usage(&e),
            },
            ("--port", Some(v)) => match v.parse() {
                Ok(p) => port = p,
                Err(_) => return usage(&format!("bad port {v:?}")),
            },
            (other, _) => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    let app = integrator_lambda::App::extension(reference::extension(mode))
        .tokens(TokenSet::new([SYSTEM_TOKEN]));
    integrator_lambda::serve(app, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "conformance-server: {problem}\nusage: conformance-server --mode diy|connectors --port N"
    );
    ExitCode::from(2)
}
