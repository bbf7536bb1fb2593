//! `integrator-double [PORT] [FIXTURE.json…]`: the local integrator.io double
//! (`integrator_lambda::outgoing::integrator::double`) on `127.0.0.1:PORT` (default 8090),
//! answering the integrator.io calls recorded in the given fixtures, keeping state and
//! resource documents in memory, accepting any bearer token, until Ctrl-C.
//!
//! ```text
//! make integrator-double FIXTURE=functions/fixtures/cloneTemplateExport/basic.json
//! INTEGRATOR_API_URL=http://127.0.0.1:8090 make serve
//! ```

use integrator_lambda::outgoing::integrator::double::IntegratorDouble;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, fixtures) = match args.split_first() {
        Some((p, rest)) if p.parse::<u16>().is_ok() => (p.parse::<u16>().unwrap_or(8090), rest),
        _ => (8090, args.as_slice()),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let double = match IntegratorDouble::start(port, None).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for f in fixtures {
            let case = std::fs::read_to_string(f)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
            match case {
                Ok(case) => println!("{f}: {} answer(s)", double.answer_from_fixture(&case)),
                Err(e) => {
                    eprintln!("{f}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        println!("integrator.io double on {}", double.url());
        let _ = tokio::signal::ctrl_c().await;
        for r in double.received() {
            println!("{} {}", r.method, r.path);
        }
        ExitCode::SUCCESS
    })
}
