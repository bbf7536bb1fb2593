//! Local all-in-one server (`make serve`): every extension point plus the incoming endpoints.
fn main() -> std::process::ExitCode {
    let options = integrator_lambda::RunOptions {
        incoming: Some(functions::incoming::default_endpoints()),
        ..Default::default()
    };
    integrator_lambda::run_with(functions::all(), options)
}
