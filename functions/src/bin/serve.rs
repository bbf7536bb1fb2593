//! Local all-in-one server (`make serve`): every extension point, the incoming endpoints, the
//! job and run utilities (also as `POST /jobs`, `POST /runs`, …) and an in-process work queue
//! that delivers to the worker code.
fn main() -> std::process::ExitCode {
    let mut m = functions::all();
    m.merge(integrator_lambda::jobs::module());
    let options = integrator_lambda::RunOptions {
        incoming: Some(functions::incoming::default_endpoints()),
        integrations: Some(functions::integrations::all()),
        ..Default::default()
    };
    integrator_lambda::run_with(m, options)
}
