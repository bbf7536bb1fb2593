//! The queue worker Lambda (`WorkerFunction`, fed by `WorkQueue`): every SQS message is an
//! extension envelope naming any registered function of any extension point
//! (see `integrator_lambda::worker`).
fn main() -> std::process::ExitCode {
    integrator_lambda::run(functions::all())
}
