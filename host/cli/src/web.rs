//! `clauderon web`: a one-time login link for the web dashboard, opened in
//! the user's browser (when there is a desktop to open it on) or printed.

use std::process::ExitCode;

use clauderon_api::LoginLink;
use clauderon_daemon::Home;

use clauderon_client::Client;

/// Ask the daemon for a login link; open it, or print it when `print` or
/// when there is no browser to open it in.
pub async fn run(home: &Home, print: bool) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home).await?;
    let link: LoginLink = client.call_as(reqwest::Method::POST, "/api/login-links", None::<&()>).await?;
    let url = format!("http://{}{}", link.host, link.path);
    let minutes = link.expires_in_s.div_ceil(60);
    if !print && has_desktop() {
        match open::that_detached(&url) {
            Ok(()) => {
                eprintln!("web: opened the dashboard in your browser (if it did not appear, open the link below)");
            }
            Err(e) => eprintln!("web: could not open a browser ({e}); open the link below"),
        }
    } else {
        eprintln!("web: open this link in a browser on this machine within {minutes} min (it works once):");
    }
    println!("{url}");
    Ok(ExitCode::SUCCESS)
}

/// Whether a graphical browser can be opened (a terminal-only machine would
/// get a text browser taking over the terminal, or nothing).
fn has_desktop() -> bool {
    cfg!(target_os = "macos") || std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}
