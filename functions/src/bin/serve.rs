//! Local all-in-one server (`make serve`): every extension point, the incoming endpoints, the
//! job and run utilities (also as `POST /jobs`, `POST /runs`, …) and an in-process work queue
//! that delivers to the worker code.

// Many calls at once: an arena per thread, large blocks kept apart (`integrator_lambda::memory`).
integrator_lambda::server_heap!();

fn main() -> std::process::ExitCode {
    let mut m = functions::all();
    m.merge(integrator_lambda::utilities());
    let app = integrator_lambda::App::new(m)
        .incoming(functions::incoming::default_endpoints())
        .integrations(functions::integrations::all());
    integrator_lambda::start(app)
}
