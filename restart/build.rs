// Links mtcp_restart as a static, libc-free binary at the fixed address that
// linker/restart-<arch>.ld gives it.
fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
    let script = match arch.as_str() {
        "x86_64" => "restart-x86_64.ld",
        "x86" => "restart-x86.ld",
        other => panic!("mtcp_restart supports x86_64 and x86, not {other}"),
    };
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../linker");
    let script = dir.join(script).canonicalize().expect("linker script");
    println!("cargo:rerun-if-changed={}", script.display());
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,noexecstack",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}
