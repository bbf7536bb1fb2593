# Sourced by `make test`'s steps (scripts/test.sh, scripts/check-new-function.sh, the Makefile's
# lint-build): clippy's lints run inside the one build the tests need. `cargo clippy` is `cargo
# check` with clippy-driver as the workspace's compiler wrapper; here the same wrapper compiles
# the workspace's own crates with full code generation, so the dependencies (the AWS SDK tree)
# are compiled once, for the tests, instead of once checked for clippy and once built. The lint
# arguments go where cargo-clippy puts them (CLIPPY_ARGS, separated by __CLIPPY_HACKERY__).
# Without clippy-driver this does nothing and `make clippy` is the way.
if [[ -z "${RUSTC_WORKSPACE_WRAPPER:-}" ]]; then
    _clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
    if [[ -n "$_clippy_driver" ]]; then
        export RUSTC_WORKSPACE_WRAPPER="$_clippy_driver"
        export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
    fi
    unset _clippy_driver
fi
