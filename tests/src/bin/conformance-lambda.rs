//! A Lambda bootstrap (official runtime) serving the reference module; mode from
//! `CONFORMANCE_MODE` (`diy` or `connectors`, default `diy`). Function URL calls use the system
//! token `SYS_TOKEN`.

use integration_tests::reference::{self, Mode, SYSTEM_TOKEN};
use integrator_lambda::transport::system_token::TokenSet;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mode: Mode = match std::env::var("CONFORMANCE_MODE")
        .unwrap_or_else(|_| "diy".into())
        .parse()
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("conformance-lambda: {e}");
            return ExitCode::from(2);
        }
    };
    integrator_lambda::start(
        integrator_lambda::App::extension(reference::extension(mode))
            .tokens(TokenSet::new([SYSTEM_TOKEN])),
    )
}
