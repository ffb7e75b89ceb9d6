//! `beskar7`: the Cluster API infrastructure provider for bare-metal servers.
//!
//! The controller-manager arrives with the operator-foundation issue; until then the binary only
//! reports its version, so nothing can mistake it for a working manager.
#![forbid(unsafe_code)]

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    match std::env::args().nth(1).as_deref() {
        Some("--version" | "-V") => println!("beskar7 {version}"),
        _ => {
            eprintln!("beskar7 {version}: the controller-manager is not implemented yet");
            std::process::exit(1);
        }
    }
}
