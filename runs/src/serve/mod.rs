//! `trajhost serve RESULTS`: a read-only web dashboard over a results folder, for a laptop
//! watching the training machine — every run's status, curves, confusion matrix, gate and the
//! comparison, refreshed by the page itself every two seconds.
//!
//! It reads run folders through the same readers as `monitor` (`monitor::read`) and `compare`
//! (`compare::report`), so it works on a folder being written or synced from elsewhere. `api`
//! turns them into JSON (keeping each run's last good read while a file is half-written),
//! `routes` maps URLs to answers and refuses any path outside the folder, `auth` holds the
//! token and Host rules, `server` is the HTTP server with its limits (head size, time,
//! connections, threads), and `page.html` is the whole front end (no build step, no CDN).

pub mod api;
pub mod auth;
pub mod routes;
pub mod server;

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// This compile of the crate (`build.rs`): `trajhost-serve --build-id` prints it, and
/// `trajhost serve` runs that binary only when it was linked against the same compile.
pub const BUILD: &str = env!("TRAJHOST_RUNS_BUILD");

/// `trajhost serve`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A results folder (or one run folder).
    pub root: PathBuf,
    /// Where to listen. Anything but a loopback address (127.0.0.1, ::1) needs --token; port 0
    /// picks a free port (the address chosen is printed).
    #[arg(long, default_value = "127.0.0.1:8686")]
    pub addr: String,
    /// A secret every request must carry (`Authorization: Bearer T` or `?token=T`); required
    /// when --addr is not a loopback address. Also read from TRAJHOST_SERVE_TOKEN, which keeps
    /// it out of `ps`.
    #[arg(long, env = "TRAJHOST_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Flag a training run whose run.log has been silent for longer than this.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub stale_after: Duration,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("results folder {}", args.root.display()))?;
    if !root.is_dir() {
        bail!("{} is not a folder", args.root.display());
    }
    if args.token.as_deref() == Some("") {
        bail!("--token is empty");
    }
    let addr = resolve(&args.addr)?;
    let token = args.token.clone();
    if token.is_none() && !addr.ip().is_loopback() {
        bail!(
            "--addr {} is reachable from other machines: give --token (or TRAJHOST_SERVE_TOKEN), or keep the default 127.0.0.1 and use `ssh -L 8686:127.0.0.1:8686 HOST` from the laptop",
            args.addr
        );
    }
    let listener = TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr()?;
    let guard = auth::Guard::new(token);
    let mut banner = format!("serving {} at http://{bound}/", root.display());
    if guard.has_token() {
        banner += "  (add ?token=… or send Authorization: Bearer …)";
    }
    if bound.ip().is_loopback() {
        banner += &format!(
            "\nfrom a laptop: ssh -N -L {0}:127.0.0.1:{0} <this machine>, then open http://127.0.0.1:{0}/",
            bound.port()
        );
    }
    // Not println!: a closed stdout (a parent that read the address and left) is no reason to
    // stop serving.
    let _ = writeln!(std::io::stdout(), "{banner}");
    let state = routes::Service {
        guard,
        runs: api::Runs::new(root, args.stale_after),
    };
    server::run(listener, move |request| state.respond(request))
        .with_context(|| format!("serving on {bound}"))
}

/// `127.0.0.1:8686`, `[::1]:0`, `localhost:8686`: the first address it names.
fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("--addr {addr:?} is not a host:port address"))?
        .next()
        .with_context(|| format!("--addr {addr:?} names no address"))
}
