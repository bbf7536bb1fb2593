//! The hello-world floor is linked exactly like the function binaries (same profile, same link
//! mode), so cold-init ratios compare like with like.

#[path = "../functions/build.rs"]
mod link;

fn main() {
    link::main();
}
