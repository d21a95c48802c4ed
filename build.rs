// Tells the mtcp tool which target it was built for, so `mtcp --version` can say it and
// launch/restart can name the other architecture's build directory.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=MTCP_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
