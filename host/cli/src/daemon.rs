//! `clauderon daemon`: assemble the daemon (`clauderon-daemon`) from this
//! binary's embedded parts and serve the API until stopped.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clauderon_daemon::{Config, Daemon, Home, Parts};

use crate::bundled;

#[derive(Args)]
pub struct DaemonArgs {
    /// API port (default from config.toml, else 3030).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// Address to bind (default 127.0.0.1; callers always need the API token).
    #[arg(long)]
    pub bind_addr: Option<IpAddr>,
    /// Turn on the experimental Kubernetes backend (`create --backend
    /// kubernetes`): sessions run as pods in the cluster [backends.kubernetes]
    /// names (namespace, kubeconfig or context; default: KUBECONFIG,
    /// ~/.kube/config). Same as `enabled = "true"` in that table.
    #[arg(long)]
    pub enable_kubernetes_backend: bool,
}

pub async fn run(home: &Home, args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(&home.config())?;
    if let Some(port) = args.http_port {
        config.daemon.http_port = port;
    }
    if let Some(addr) = args.bind_addr {
        config.daemon.bind_addr = addr;
    }
    if args.enable_kubernetes_backend {
        config.enable_kubernetes();
    }
    let exe = std::env::current_exe().context("finding the clauderon binary (it runs the sandbox)")?;
    let parts = Parts { bundled: bundled::sources(), relay: bundled::RELAY, exe };
    let daemon = Daemon::assemble(home, config, parts).await?;
    let pid_file = home.root.join("daemon.pid");
    std::fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;
    eprintln!("clauderon daemon: API on http://{}, home {}", daemon.addr, home.root.display());
    let served = daemon.serve(shutdown()).await;
    let _ = std::fs::remove_file(&pid_file);
    served?;
    eprintln!("clauderon daemon: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
