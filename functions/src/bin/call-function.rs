//! `make call FN=<name> PAYLOAD=<file>`: one call of any example function, in process, through
//! the same dispatch path as a real call; prints its log lines, `Execution finished in N ms`
//! and the answer. PAYLOAD is the options JSON, or a fixture/envelope whose `options` is used.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [function, payload] = args.as_slice() else {
        eprintln!("usage: call-function <function name> <payload.json>");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(payload) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {payload}: {e}");
            return ExitCode::from(2);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{payload} is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let mut m = functions::all();
    m.merge(integrator_lambda::utilities());
    integrator_lambda::app::call_once(m, function, integrator_lambda::app::options_of(value))
}
