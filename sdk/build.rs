//! Rebuild the bindings when the WIT contract changes (wit-bindgen reads it at compile time).

fn main() {
    println!("cargo:rerun-if-changed=../wit");
}
