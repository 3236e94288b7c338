//! `clauderon-relay --port PORT (--socket PATH | --tunnel PORT | --direct IP:PORT --door FILE) -- COMMAND…`: the init of a
//! session's container (see `clauderon_sandbox::container_init`). Built as a
//! static binary, so it runs in any image.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match clauderon_sandbox::container_init::Args::parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("clauderon-relay: {e}");
            std::process::exit(125);
        }
    };
    match clauderon_sandbox::container_init::run(&parsed) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("clauderon-relay: {e}");
            std::process::exit(125);
        }
    }
}
