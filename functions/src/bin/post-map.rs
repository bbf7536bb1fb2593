fn main() -> std::process::ExitCode {
    integrator_lambda::start(functions::post_map::module())
}
