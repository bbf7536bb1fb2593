//! The queue worker Lambda (`WorkerFunction`, fed by `WorkQueue`): every SQS message is an
//! extension envelope naming any registered function of any extension point, a deferred job,
//! or a run/stream message (see `integrator_lambda::worker`). It also answers direct calls to
//! the job and run utilities (`scheduleInvocation`, `startRun`, `continueRun`, …). Lambda only:
//! locally, `make serve` hosts the same functions and an in-process work queue.
fn main() -> std::process::ExitCode {
    let mut m = functions::all();
    m.merge(integrator_lambda::utilities());
    let app = integrator_lambda::App::lambda_only(m).integrations(functions::integrations::all());
    integrator_lambda::start(app)
}
