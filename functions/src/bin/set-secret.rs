//! `set-secret NAME`: store a secret for the extension functions, reading its value from stdin
//! (one trailing newline stripped). On AWS (`EXTENSION_BACKEND=aws`, on Lambda or with
//! `AWS_ENDPOINT_URL`) the value is KMS-encrypted, bound to the stack and name, and put in the
//! extension table; with the embedded backend it goes to the dev-only plaintext file.
//!
//! ```text
//! printf %s "$TOKEN" | set-secret crm-api-token
//! ```
//!
//! The value is never taken as an argument (it would show in `ps` and the shell history), never
//! printed, and this tool cannot read a secret back. See `integrator_lambda::store::secrets`.

use std::io::Read;
use std::process::ExitCode;

const USAGE: &str =
    "usage: set-secret NAME   (the value is read from stdin; NAME is 1-128 of A-Z a-z 0-9 _ . -)";

fn main() -> ExitCode {
    use integrator_lambda::store::secrets;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = match args.as_slice() {
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [name] => name.clone(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = secrets::validate_name(&name) {
        eprintln!("set-secret: {e}");
        return ExitCode::from(2);
    }
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut raw) {
        eprintln!("set-secret: cannot read the value from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let value = match secrets::value_from_input(&name, raw) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("set-secret: {e}");
            return ExitCode::from(2);
        }
    };
    match integrator_lambda::app::store_secret(&name, &value) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("set-secret: {e}");
            ExitCode::FAILURE
        }
    }
}
