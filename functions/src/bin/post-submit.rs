fn main() -> std::process::ExitCode {
    integrator_lambda::run(functions::post_submit::module())
}
