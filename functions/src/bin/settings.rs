fn main() -> std::process::ExitCode {
    integrator_lambda::start(functions::settings::module())
}
