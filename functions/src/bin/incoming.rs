//! The incoming-webhook Lambda (Function URL): `POST /incoming/{endpoint}`.
fn main() -> std::process::ExitCode {
    let app = integrator_lambda::App::new(integrator_lambda::Module::new())
        .incoming(functions::incoming::default_endpoints())
        .incoming_required();
    integrator_lambda::start(app)
}
