fn main() -> std::process::ExitCode {
    integrator_lambda::run(functions::pre_map::module())
}
