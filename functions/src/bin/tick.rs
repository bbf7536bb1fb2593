//! The tick Lambda (`TickFunction`, every minute from EventBridge Scheduler with the envelope
//! `{"diy":true,"function":"tick","options":{}}`): moves the deferred jobs that are due into
//! the work queue, each exactly once (see `integrator_lambda::jobs::deferred`).
fn main() -> std::process::ExitCode {
    integrator_lambda::start(integrator_lambda::utilities())
}
