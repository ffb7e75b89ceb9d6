//! The manager's flags (architecture.md §4, the ones this release implements). Flags it does not
//! implement yet are rejected by clap as unknown, never silently accepted.
//!
//! The callback flags: `--callback-url` is required (the listener always runs: without it no host
//! can be provisioned); a URL naming port 0 gets the port `--callback-addr` was bound to (tests
//! bind `127.0.0.1:0`), and likewise for `--boot-url` with `--boot-addr`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// `beskar7 manager` flags.
#[derive(Args, Clone, Debug)]
pub struct ManagerArgs {
    /// Kubeconfig file of the API server to use. Without it: $KUBECONFIG, ~/.kube/config, or
    /// in a cluster the pod's service account.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Watch only this namespace (all namespaces when omitted).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Only handle objects labelled cluster.x-k8s.io/watch-filter=<VALUE>.
    #[arg(long, value_name = "VALUE")]
    pub watch_filter: Option<String>,

    /// Address of /metrics, /healthz and /readyz (":8080" means every interface, port 8080).
    #[arg(long, value_name = "ADDR", default_value = ":8080", value_parser = parse_addr)]
    pub metrics_addr: SocketAddr,

    /// How long a released host's power-off and boot-override clear may take before it goes to
    /// Error ("power state unknown"), e.g. 10m, 90s.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub deprovision_timeout: Duration,

    /// How often an idle host's BMC is checked for drift (one Redfish GET), e.g. 10m.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Hosts reconciled at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_concurrent_reconciles: u16,

    /// Log format.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Address of the HTTPS callback listener the agents talk to.
    #[arg(long, value_name = "ADDR", default_value = ":8082", value_parser = parse_addr)]
    pub callback_addr: SocketAddr,

    /// External https base URL of the callback listener, as servers reach it (rendered into
    /// `beskar7.api`), e.g. `https://beskar7.example.com:8082`. Required. Port 0 means the port
    /// --callback-addr was bound to.
    #[arg(long, value_name = "URL", value_parser = parse_callback_url)]
    pub callback_url: Option<String>,

    /// A Secret in the operator namespace with tls.crt, tls.key and ca.crt (cert-manager's
    /// layout) for the callback listener. Without it a CA and a leaf are generated and kept in
    /// the Secret beskar7-callback-tls.
    #[arg(long, value_name = "SECRET")]
    pub callback_tls_secret: Option<String>,

    /// Address of the opt-in plain-HTTP boot listener (first stage and /boot only, for iPXE
    /// builds without HTTPS; trusted networks only). Needs --boot-url.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr, requires = "boot_url")]
    pub boot_addr: Option<SocketAddr>,

    /// External http base URL of the boot listener. Needs --boot-addr. Port 0 means the port
    /// --boot-addr was bound to.
    #[arg(long, value_name = "URL", value_parser = parse_boot_url, requires = "boot_addr")]
    pub boot_url: Option<String>,

    /// Where the operator keeps its own Secrets (the callback TLS material and the token key).
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "POD_NAMESPACE",
        default_value = "beskar7-system"
    )]
    pub operator_namespace: String,

    /// How long a provisioning attempt may take from its start (power on) to the agent's
    /// hardware report, e.g. 10m.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub inspection_timeout: Duration,

    /// How long a provisioning attempt may take from the hardware report to `provisioned`, e.g.
    /// 20m. Also the agent's own budget (`beskar7.timeout`).
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = parse_duration)]
    pub deployment_timeout: Duration,

    /// Hosts booting the agent at once (provisioning or cleaning), across all BMCs.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub max_concurrent_provisions: u32,

    /// The agent image (as `inspectionImageURL`) for cleaning boots of hosts whose last attempt
    /// did not record one. Optional: a cleaning attempt normally reuses the image of the
    /// provisioning attempt it cleans up after.
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub clean_image_url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `:8080`, `0.0.0.0:8080`, `127.0.0.1:0`, `[::1]:9090`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse()
        .map_err(|_| format!("{s:?} is not an address like :8080 or 127.0.0.1:8080"))
}

fn parse_url_with_scheme(s: &str, schemes: &[&str]) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !schemes.contains(&url.scheme()) || url.host_str().is_none() {
        return Err(format!(
            "{s:?} must be an {} URL with a host",
            schemes.join(" or ")
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?} must not have a query or a fragment"));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// `--callback-url`: https with a host.
pub fn parse_callback_url(s: &str) -> Result<String, String> {
    parse_url_with_scheme(s, &["https"])
}

/// `--boot-url`: http with a host (the boot listener speaks plain HTTP).
pub fn parse_boot_url(s: &str) -> Result<String, String> {
    parse_url_with_scheme(s, &["http"])
}

/// `--clean-image-url`: http or https.
pub fn parse_http_url(s: &str) -> Result<String, String> {
    parse_url_with_scheme(s, &["http", "https"])
}

/// `url` with port 0 replaced by `port` (the port a `:0` address was bound to); unchanged
/// otherwise.
pub fn with_bound_port(url: &str, port: u16) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.port() == Some(0) => {
            let _ = u.set_port(Some(port));
            u.as_str().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

/// A duration like `10m`, `30s`, `1h30m`, `500ms`; a bare number is refused (no guessing units).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("{s:?} is not a duration like 10m, 30s, 1h30m or 500ms");
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(err()),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_only() {
        let s = Duration::from_secs;
        assert_eq!(parse_duration("10m"), Ok(s(600)));
        assert_eq!(parse_duration("30s"), Ok(s(30)));
        assert_eq!(parse_duration("1h30m"), Ok(s(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "10", "m", "10x", "-5s", "1.5m"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("not a duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn callback_urls_need_their_scheme_and_port_zero_is_substituted() {
        assert_eq!(
            parse_callback_url("https://b7.example.com:8082/").unwrap(),
            "https://b7.example.com:8082"
        );
        assert!(parse_callback_url("http://b7.example.com").is_err());
        assert!(parse_boot_url("https://b7.example.com").is_err());
        assert_eq!(
            with_bound_port("https://127.0.0.1:0", 4242),
            "https://127.0.0.1:4242"
        );
        assert_eq!(
            with_bound_port("https://b7.example.com:8082", 4242),
            "https://b7.example.com:8082"
        );
    }

    #[test]
    fn addresses_accept_the_go_form() {
        assert_eq!(parse_addr(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(parse_addr("127.0.0.1:0").unwrap().port(), 0);
        assert!(parse_addr("8080").unwrap_err().contains("not an address"));
    }
}
