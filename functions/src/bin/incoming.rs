//! The incoming-webhook Lambda (Function URL): `POST /incoming/{endpoint}`.
fn main() -> std::process::ExitCode {
    let options = integrator_lambda::RunOptions {
        incoming: Some(functions::incoming::default_endpoints()),
        incoming_required: true,
        ..Default::default()
    };
    integrator_lambda::run_with(integrator_lambda::Module::new(), options)
}
