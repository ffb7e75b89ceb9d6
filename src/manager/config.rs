//! The manager's flags (architecture.md §4, the ones this release implements). Flags it does not
//! implement yet are rejected by clap as unknown, never silently accepted.

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
    fn addresses_accept_the_go_form() {
        assert_eq!(parse_addr(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(parse_addr("127.0.0.1:0").unwrap().port(), 0);
        assert!(parse_addr("8080").unwrap_err().contains("not an address"));
    }
}
