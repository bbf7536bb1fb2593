fn main() -> std::process::ExitCode {
    integrator_lambda::start(functions::pre_save_page::module())
}
