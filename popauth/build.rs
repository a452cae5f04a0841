//! Compiles the Berkeley DB shim (`csrc/bdb.c`, for `popauth -import` of a
//! `BASE.db`) against the installed `<db.h>` and links libdb 5.3 (Debian:
//! libdb5.3-dev, which `scripts/setup.sh build` installs).

fn main() {
    println!("cargo:rerun-if-changed=csrc/bdb.c");
    cc::Build::new()
        .file("csrc/bdb.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("popauth_bdb");
    println!("cargo:rustc-link-lib=dylib=db-5.3");
}
