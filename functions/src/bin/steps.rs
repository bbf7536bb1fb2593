fn main() -> std::process::ExitCode {
    integrator_lambda::run(functions::steps::module())
}
