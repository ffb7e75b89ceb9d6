//! The kernel command line: `/proc/cmdline` text → typed [`BootParams`] (contract §4).
//!
//! Words are split on whitespace outside double quotes and the quotes are removed, as Linux does
//! (`beskar7.x="a b"` and `"beskar7.x=a b"` both give `a b`). Words without `=` (the image name
//! iPXE prefixes under UEFI) and parameters of other programs are ignored. Unknown `beskar7.*`
//! parameters are collected in [`BootParams::unknown`] (a newer operator may send more). A
//! `beskar7.*` parameter given twice is an error. Errors name the parameter; they quote values
//! (shortened) except the token's, which never appears in an error or in `Debug` output.

use std::net::Ipv4Addr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::Token;

/// A malformed or incomplete kernel command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmdlineError {
    #[error("kernel command line: missing parameter {0}")]
    Missing(&'static str),
    #[error("kernel command line: parameter {name} is malformed: {reason}")]
    Malformed { name: String, reason: String },
    #[error("kernel command line: parameter {0} is given more than once")]
    Duplicate(String),
    #[error("kernel command line: a double quote is not closed")]
    UnbalancedQuote,
}

/// Everything the operator told the agent on its kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootParams {
    /// `beskar7.api`: the operator's HTTPS callback base URL, without a trailing `/`.
    pub api: String,
    /// `beskar7.namespace` and `beskar7.host`: the PhysicalHost.
    pub namespace: String,
    pub host: String,
    /// `beskar7.token`: the bearer token of every callback.
    pub token: Token,
    /// `beskar7.ca`: the PEM of the CA that issued the callback listener's certificate (decoded
    /// from base64; its PEM structure is checked when the TLS client loads it).
    pub ca_pem: String,
    /// `beskar7.timeout`: how long the agent may take; absent from v4.2 operators.
    pub timeout: Option<Duration>,
    /// What this boot is for: provisioning (with its target) or cleaning (`beskar7.mode=clean`).
    pub mode: Mode,
    /// `beskar7.disk`, `-serial`, `-wwn`, `-min-gb`.
    pub disk_hints: DiskHints,
    /// `beskar7.ip`: a static address instead of DHCP.
    pub ip: Option<StaticIp>,
    /// `BOOTIF`: the MAC of the interface iPXE booted from.
    pub boot_mac: Option<MacAddr>,
    /// `beskar7.*` parameters this agent does not know, by name (values are not kept).
    pub unknown: Vec<String>,
}

/// The purpose of this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Provision(Provision),
    /// `beskar7.mode=clean`: wipe the eligible disks. Provisioning parameters are not read.
    Clean,
}

/// The provisioning parameters (absent on cleaning boots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    /// `beskar7.target`: the image or the kexec tar(.gz).
    pub target: String,
    /// `beskar7.target-digest`: required for Image, optional for Kexec.
    pub target_digest: Option<Sha256Digest>,
    /// `beskar7.provider-id`.
    pub provider_id: String,
    /// `beskar7.handoff` (absent means Image).
    pub handoff: Handoff,
    /// `beskar7.config` (`spec.configurationURL`).
    pub config: Option<String>,
    /// `beskar7.config-url`: the one-time URL a kexec'd OS fetches its configuration from.
    pub config_url: Option<String>,
}

/// How the target OS takes over (contract §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    Image,
    Kexec,
}

/// A SHA-256 digest given as `sha256:<64 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sha256Digest(pub [u8; 32]);

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Root device hints; all that are given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskHints {
    /// `beskar7.disk`: a device path such as `/dev/sda` or `/dev/disk/by-id/...`.
    pub device: Option<String>,
    /// `beskar7.disk-serial`.
    pub serial: Option<String>,
    /// `beskar7.disk-wwn`.
    pub wwn: Option<String>,
    /// `beskar7.disk-min-gb`: minimum size in GB (10^9 bytes).
    pub min_gb: Option<u64>,
}

impl DiskHints {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// `beskar7.ip=<ip>::[<gw>]:<mask>[:<dns>]` (IPv4; the mask dotted or as a prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticIp {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
}

/// An Ethernet MAC address; displayed as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::str::FromStr for MacAddr {
    type Err = ();

    /// Six hex bytes separated by `:` or `-`.
    fn from_str(s: &str) -> Result<Self, ()> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(());
        }
        let mut mac = [0u8; 6];
        for (slot, part) in mac.iter_mut().zip(&parts) {
            *slot = parse_hex_byte(part).ok_or(())?;
        }
        Ok(Self(mac))
    }
}

fn parse_hex_byte(s: &str) -> Option<u8> {
    if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(s, 16).ok()
}

/// Splits a command line into words the way Linux does: whitespace separates words except inside
/// double quotes, and the quotes themselves are dropped.
pub fn split_words(text: &str) -> Result<Vec<String>, CmdlineError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut in_quote = false;
    for c in text.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                in_word = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_quote {
        crate::wipe(word);
        words.into_iter().for_each(crate::wipe);
        return Err(CmdlineError::UnbalancedQuote);
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

const PREFIX: &str = "beskar7.";

/// The parameters this agent reads, without the `beskar7.` prefix.
const KNOWN: &[&str] = &[
    "api",
    "namespace",
    "host",
    "token",
    "target",
    "target-digest",
    "provider-id",
    "ca",
    "disk",
    "disk-serial",
    "disk-wwn",
    "disk-min-gb",
    "ip",
    "timeout",
    "handoff",
    "config",
    "config-url",
    "mode",
];

/// Parses `/proc/cmdline` text.
pub fn parse(text: &str) -> Result<BootParams, CmdlineError> {
    let mut words = split_words(text)?;
    let result = parse_words(&words);
    words.drain(..).for_each(crate::wipe);
    result
}

/// The collected `beskar7.*` values (full names as keys) and `BOOTIF`.
struct Raw<'a> {
    values: Vec<(&'a str, &'a str)>,
}

impl<'a> Raw<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }

    fn require(&self, name: &'static str) -> Result<&'a str, CmdlineError> {
        self.get(name).ok_or(CmdlineError::Missing(name))
    }
}

fn parse_words(words: &[String]) -> Result<BootParams, CmdlineError> {
    let mut raw = Raw { values: Vec::new() };
    let mut unknown = Vec::new();
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let ours = key == "BOOTIF"
            || key
                .strip_prefix(PREFIX)
                .is_some_and(|rest| KNOWN.contains(&rest));
        if ours {
            // A lost space or a stray quote merges the token into another value: refuse it, so
            // that the value cannot be shown or used anywhere.
            if value.contains("beskar7.token=") {
                return Err(CmdlineError::Malformed {
                    name: key.to_string(),
                    reason: "it runs into beskar7.token (a missing space or a stray quote?)"
                        .to_string(),
                });
            }
            if raw.get(key).is_some() {
                return Err(CmdlineError::Duplicate(key.to_string()));
            }
            raw.values.push((key, value));
        } else if key.starts_with(PREFIX) && !unknown.iter().any(|u| u == key) {
            unknown.push(key.to_string());
        }
    }

    let api = https_url("beskar7.api", raw.require("beskar7.api")?)?;
    let namespace = dns_name("beskar7.namespace", raw.require("beskar7.namespace")?, 63)?;
    let host = dns_name("beskar7.host", raw.require("beskar7.host")?, 253)?;
    let token = token(raw.require("beskar7.token")?)?;
    let ca_pem = ca("beskar7.ca", raw.require("beskar7.ca")?)?;
    let timeout = raw
        .get("beskar7.timeout")
        .map(|v| positive_int("beskar7.timeout", v).map(Duration::from_secs))
        .transpose()?;
    let mode = match raw.get("beskar7.mode") {
        None => Mode::Provision(provision(&raw)?),
        Some("clean") => Mode::Clean,
        Some(other) => return Err(malformed("beskar7.mode", other, "the only mode is `clean`")),
    };
    let disk_hints = DiskHints {
        device: raw
            .get("beskar7.disk")
            .map(|v| device_path("beskar7.disk", v))
            .transpose()?,
        serial: raw
            .get("beskar7.disk-serial")
            .map(|v| plain("beskar7.disk-serial", v))
            .transpose()?,
        wwn: raw
            .get("beskar7.disk-wwn")
            .map(|v| plain("beskar7.disk-wwn", v))
            .transpose()?,
        min_gb: raw
            .get("beskar7.disk-min-gb")
            .map(|v| positive_int("beskar7.disk-min-gb", v))
            .transpose()?,
    };
    let ip = raw
        .get("beskar7.ip")
        .map(|v| static_ip("beskar7.ip", v))
        .transpose()?;
    let boot_mac = raw.get("BOOTIF").map(bootif).transpose()?;
    Ok(BootParams {
        api,
        namespace,
        host,
        token,
        ca_pem,
        timeout,
        mode,
        disk_hints,
        ip,
        boot_mac,
        unknown,
    })
}

fn provision(raw: &Raw<'_>) -> Result<Provision, CmdlineError> {
    let handoff = match raw.get("beskar7.handoff") {
        None | Some("image") => Handoff::Image,
        Some("kexec") => Handoff::Kexec,
        Some(other) => {
            return Err(malformed(
                "beskar7.handoff",
                other,
                "expected `kexec` or `image`",
            ));
        }
    };
    let target = http_url("beskar7.target", raw.require("beskar7.target")?)?;
    let target_digest = match raw.get("beskar7.target-digest") {
        Some(v) => Some(digest("beskar7.target-digest", v)?),
        None if handoff == Handoff::Image => {
            return Err(CmdlineError::Missing("beskar7.target-digest"));
        }
        None => None,
    };
    let provider_id = provider_id("beskar7.provider-id", raw.require("beskar7.provider-id")?)?;
    let config = raw
        .get("beskar7.config")
        .map(|v| http_url("beskar7.config", v))
        .transpose()?;
    let config_url = raw
        .get("beskar7.config-url")
        .map(|v| http_url("beskar7.config-url", v))
        .transpose()?;
    Ok(Provision {
        target,
        target_digest,
        provider_id,
        handoff,
        config,
        config_url,
    })
}

/// The error for a bad value, quoting it (shortened) unless it may hold the token: a stray `=`
/// or quote can merge `beskar7.token=…` into another parameter's value.
fn malformed(name: &str, value: &str, reason: &str) -> CmdlineError {
    const MAX: usize = 64;
    if value.contains("beskar7.token") || value.chars().any(char::is_whitespace) {
        return CmdlineError::Malformed {
            name: name.to_string(),
            reason: format!("{reason} (value not shown: it runs into other parameters)"),
        };
    }
    let shown: String = value.chars().take(MAX).collect();
    let ellipsis = if value.chars().count() > MAX {
        "…"
    } else {
        ""
    };
    CmdlineError::Malformed {
        name: name.to_string(),
        reason: format!("{reason} (got \"{shown}{ellipsis}\")"),
    }
}

/// Visible ASCII without quotes or backslashes: safe in URLs, paths, headers and messages.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

fn plain(name: &str, value: &str) -> Result<String, CmdlineError> {
    if is_plain(value) {
        Ok(value.to_string())
    } else {
        Err(malformed(name, value, "expected visible ASCII characters"))
    }
}

fn url_with_scheme(name: &str, value: &str, schemes: &[&str]) -> Result<String, CmdlineError> {
    let reason = format!("expected an {} URL", schemes.join(" or "));
    if !is_plain(value) {
        return Err(malformed(name, value, &reason));
    }
    let Some(rest) = schemes
        .iter()
        .find_map(|s| value.strip_prefix(s).and_then(|r| r.strip_prefix("://")))
    else {
        return Err(malformed(name, value, &reason));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(malformed(name, value, &format!("{reason} with a host")));
    }
    Ok(value.to_string())
}

fn https_url(name: &str, value: &str) -> Result<String, CmdlineError> {
    url_with_scheme(name, value, &["https"]).map(|u| u.trim_end_matches('/').to_string())
}

fn http_url(name: &str, value: &str) -> Result<String, CmdlineError> {
    url_with_scheme(name, value, &["http", "https"])
}

/// A Kubernetes name: lowercase alphanumerics, `-` and `.`, starting and ending alphanumeric.
fn dns_name(name: &str, value: &str, max: usize) -> Result<String, CmdlineError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(value.to_string())
    } else {
        Err(malformed(
            name,
            value,
            &format!("expected a Kubernetes name of at most {max} lowercase characters"),
        ))
    }
}

/// Never quotes the value.
fn token(value: &str) -> Result<Token, CmdlineError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(Token::new(value))
    } else {
        Err(CmdlineError::Malformed {
            name: "beskar7.token".to_string(),
            reason: "expected base64url characters (value not shown)".to_string(),
        })
    }
}

fn ca(name: &str, value: &str) -> Result<String, CmdlineError> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = engine
        .decode(value)
        .map_err(|e| malformed(name, value, &format!("expected base64 ({e})")))?;
    let pem = String::from_utf8(bytes)
        .map_err(|_| malformed(name, value, "the decoded CA is not text (PEM)"))?;
    if pem.trim().is_empty() {
        return Err(malformed(name, value, "the decoded CA is empty"));
    }
    Ok(pem)
}

fn positive_int(name: &str, value: &str) -> Result<u64, CmdlineError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(malformed(name, value, "expected a positive whole number")),
    }
}

fn digest(name: &str, value: &str) -> Result<Sha256Digest, CmdlineError> {
    let reason = "expected sha256:<64 hex digits>";
    let hex = value
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.is_ascii())
        .ok_or_else(|| malformed(name, value, reason))?;
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot =
            parse_hex_byte(&hex[2 * i..2 * i + 2]).ok_or_else(|| malformed(name, value, reason))?;
    }
    Ok(Sha256Digest(out))
}

/// Any `<scheme>://<rest>` of visible ASCII (the operator renders `b7://<ns>/<host>/<machine>`).
fn provider_id(name: &str, value: &str) -> Result<String, CmdlineError> {
    match value.split_once("://") {
        Some((scheme, rest)) if is_plain(value) && !scheme.is_empty() && !rest.is_empty() => {
            Ok(value.to_string())
        }
        _ => Err(malformed(name, value, "expected <scheme>://<id>")),
    }
}

fn device_path(name: &str, value: &str) -> Result<String, CmdlineError> {
    let ok = value.len() > "/dev/".len()
        && value.starts_with("/dev/")
        && is_plain(value)
        && !value.split('/').any(|seg| seg == "..");
    if ok {
        Ok(value.to_string())
    } else {
        Err(malformed(name, value, "expected a device path under /dev/"))
    }
}

fn static_ip(name: &str, value: &str) -> Result<StaticIp, CmdlineError> {
    let bad = |why: &str| {
        malformed(
            name,
            value,
            &format!("expected <ip>::[<gw>]:<mask>[:<dns>]: {why}"),
        )
    };
    let parts: Vec<&str> = value.split(':').collect();
    if !(4..=5).contains(&parts.len()) || !parts[1].is_empty() {
        return Err(bad("wrong number of fields"));
    }
    let address: Ipv4Addr = parts[0].parse().map_err(|_| bad("bad address"))?;
    let gateway = match parts[2] {
        "" => None,
        gw => Some(gw.parse().map_err(|_| bad("bad gateway"))?),
    };
    let prefix_len = if let Ok(mask) = parts[3].parse::<Ipv4Addr>() {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            return Err(bad("the mask is not contiguous"));
        }
        bits.leading_ones() as u8
    } else {
        match parts[3].parse::<u8>() {
            Ok(n) if n <= 32 => n,
            _ => return Err(bad("bad mask")),
        }
    };
    let dns = match parts.get(4) {
        None | Some(&"") => None,
        Some(d) => Some(d.parse().map_err(|_| bad("bad DNS server"))?),
    };
    Ok(StaticIp {
        address,
        prefix_len,
        gateway,
        dns,
    })
}

/// `BOOTIF=01-aa-bb-cc-dd-ee-ff` (ARP hardware type 1, Ethernet, then the MAC).
fn bootif(value: &str) -> Result<MacAddr, CmdlineError> {
    let reason = "expected 01-aa-bb-cc-dd-ee-ff";
    let mac = value
        .strip_prefix("01-")
        .filter(|m| !m.contains(':'))
        .ok_or_else(|| malformed("BOOTIF", value, reason))?;
    mac.parse().map_err(|()| malformed("BOOTIF", value, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "beskar7.api=https://10.0.0.1:8082/ beskar7.namespace=ns beskar7.host=h1 \
        beskar7.token=tok_EN-123 beskar7.ca=LS0tLS1CRUdJTg== beskar7.target=http://i/x.raw \
        beskar7.target-digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF \
        beskar7.provider-id=b7://ns/h1/m1";

    fn with(extra: &str) -> Result<BootParams, CmdlineError> {
        parse(&format!("{BASE} {extra}"))
    }

    fn reason_of(err: CmdlineError) -> (String, String) {
        match err {
            CmdlineError::Malformed { name, reason } => (name, reason),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn words_follow_linux_quoting() {
        let words = split_words("a  b=\"x y\"\t\"c=d e\" f=\"\"\n").unwrap();
        assert_eq!(words, ["a", "b=x y", "c=d e", "f="]);
        assert_eq!(split_words("a=\"open"), Err(CmdlineError::UnbalancedQuote));
    }

    #[test]
    fn minimal_provisioning_line() {
        let p = with("").unwrap();
        assert_eq!(p.api, "https://10.0.0.1:8082", "trailing slash dropped");
        assert_eq!(p.ca_pem, "-----BEGIN");
        assert_eq!(p.timeout, None);
        assert_eq!(p.boot_mac, None);
        let Mode::Provision(prov) = p.mode else {
            panic!("provision mode")
        };
        assert_eq!(prov.handoff, Handoff::Image);
        assert_eq!(
            prov.target_digest.unwrap().to_string(),
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn every_optional_parameter() {
        let p = with(
            "beskar7.timeout=1800 beskar7.handoff=kexec beskar7.config=https://c/x \
             beskar7.config-url=http://10.0.0.1:8080/api/v1/config/ns/h1/n0nce \
             beskar7.disk=/dev/disk/by-id/wwn-0x5000 beskar7.disk-serial=S64X beskar7.disk-wwn=0x5000c500 \
             beskar7.disk-min-gb=200 beskar7.ip=192.0.2.10::192.0.2.1:255.255.255.0:192.0.2.53 \
             BOOTIF=01-AA-bb-cc-dd-ee-0f beskar7.future=1 console=ttyS0",
        )
        .unwrap();
        assert_eq!(p.timeout, Some(Duration::from_secs(1800)));
        let Mode::Provision(prov) = &p.mode else {
            panic!("provision mode")
        };
        assert_eq!(prov.handoff, Handoff::Kexec);
        assert_eq!(prov.config.as_deref(), Some("https://c/x"));
        assert!(prov.config_url.as_deref().unwrap().ends_with("/n0nce"));
        assert_eq!(
            p.disk_hints.device.as_deref(),
            Some("/dev/disk/by-id/wwn-0x5000")
        );
        assert_eq!(p.disk_hints.serial.as_deref(), Some("S64X"));
        assert_eq!(p.disk_hints.wwn.as_deref(), Some("0x5000c500"));
        assert_eq!(p.disk_hints.min_gb, Some(200));
        let ip = p.ip.unwrap();
        assert_eq!(ip.address, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(ip.prefix_len, 24);
        assert_eq!(ip.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(ip.dns, Some(Ipv4Addr::new(192, 0, 2, 53)));
        assert_eq!(p.boot_mac.unwrap().to_string(), "aa:bb:cc:dd:ee:0f");
        assert_eq!(p.unknown, ["beskar7.future"]);
    }

    #[test]
    fn kexec_needs_no_digest_but_image_does() {
        let base = BASE.replace(
            "beskar7.target-digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF",
            "",
        );
        assert_eq!(
            parse(&base),
            Err(CmdlineError::Missing("beskar7.target-digest"))
        );
        let p = parse(&format!("{base} beskar7.handoff=kexec")).unwrap();
        let Mode::Provision(prov) = p.mode else {
            panic!("provision mode")
        };
        assert_eq!(prov.target_digest, None);
    }

    #[test]
    fn cleaning_boot_has_no_target() {
        let p = parse(
            "beskar7.api=https://b:8082 beskar7.namespace=ns beskar7.host=h1 beskar7.token=t \
             beskar7.ca=eA== beskar7.timeout=600 beskar7.mode=clean BOOTIF=01-52-54-00-12-34-56",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Clean);
        let err = parse("beskar7.api=https://b beskar7.namespace=ns beskar7.host=h beskar7.token=t beskar7.ca=eA== beskar7.mode=dirty").unwrap_err();
        assert_eq!(reason_of(err).0, "beskar7.mode");
    }

    #[test]
    fn missing_parameters_are_named() {
        for name in [
            "beskar7.api",
            "beskar7.namespace",
            "beskar7.host",
            "beskar7.token",
            "beskar7.ca",
            "beskar7.target",
            "beskar7.provider-id",
        ] {
            let line: String = BASE
                .split_whitespace()
                .filter(|w| !w.starts_with(&format!("{name}=")))
                .collect::<Vec<_>>()
                .join(" ");
            let err = parse(&line).unwrap_err();
            assert_eq!(err, CmdlineError::Missing(name));
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn malformed_parameters_are_named() {
        for (extra, name) in [
            ("beskar7.timeout=0", "beskar7.timeout"),
            ("beskar7.timeout=ten", "beskar7.timeout"),
            ("beskar7.disk=sda", "beskar7.disk"),
            ("beskar7.disk=/dev/../etc/passwd", "beskar7.disk"),
            ("beskar7.disk-min-gb=-1", "beskar7.disk-min-gb"),
            (
                "beskar7.ip=192.0.2.10:192.0.2.1:255.255.255.0",
                "beskar7.ip",
            ),
            ("beskar7.ip=192.0.2.10::192.0.2.1:255.0.255.0", "beskar7.ip"),
            ("beskar7.ip=192.0.2.10::192.0.2.1:33", "beskar7.ip"),
            ("BOOTIF=52-54-00-12-34-56", "BOOTIF"),
            ("BOOTIF=01-52-54-00-12-34", "BOOTIF"),
            ("beskar7.handoff=pxe", "beskar7.handoff"),
            ("beskar7.config=ftp://x/y", "beskar7.config"),
        ] {
            let (got, reason) = reason_of(with(extra).unwrap_err());
            assert_eq!(got, name, "{extra}: {reason}");
        }
        for (from, to, name) in [
            (
                "https://10.0.0.1:8082/",
                "http://10.0.0.1:8082/",
                "beskar7.api",
            ),
            ("https://10.0.0.1:8082/", "https:///x", "beskar7.api"),
            ("namespace=ns", "namespace=NS", "beskar7.namespace"),
            ("host=h1", "host=-h1", "beskar7.host"),
            ("ca=LS0tLS1CRUdJTg==", "ca=not*base64", "beskar7.ca"),
            ("sha256:0123", "sha1:0123", "beskar7.target-digest"),
            ("ABCDEF", "ABCDEG", "beskar7.target-digest"),
            ("ABCDEF", "AéCDE", "beskar7.target-digest"),
            ("b7://ns/h1/m1", "ns-h1-m1", "beskar7.provider-id"),
            ("http://i/x.raw", "i/x.raw", "beskar7.target"),
        ] {
            let (got, _) = reason_of(parse(&BASE.replace(from, to)).unwrap_err());
            assert_eq!(got, name, "{from} → {to}");
        }
    }

    #[test]
    fn duplicates_are_refused() {
        assert_eq!(
            with("beskar7.host=h2").unwrap_err(),
            CmdlineError::Duplicate("beskar7.host".to_string())
        );
    }

    #[test]
    fn the_token_never_shows() {
        let p = with("").unwrap();
        assert_eq!(p.token.expose(), "tok_EN-123");
        assert!(!format!("{p:?}").contains("tok_EN-123"));
        let bad = BASE.replace("tok_EN-123", "tok%EN-123");
        let err = parse(&bad).unwrap_err();
        assert!(err.to_string().contains("beskar7.token"));
        assert!(!err.to_string().contains("EN-123"));
        assert!(!format!("{err:?}").contains("EN-123"));
        let quoted = BASE.replace("tok_EN-123", "\"tok EN-123\"");
        assert!(!parse(&quoted).unwrap_err().to_string().contains("EN-123"));
    }

    #[test]
    fn odd_text_is_an_error_never_a_panic() {
        let chars: Vec<char> = BASE.chars().collect();
        for i in 0..chars.len() {
            for odd in ['"', '=', ' ', 'é', '\0', ':', '-'] {
                let mut line = chars.clone();
                line[i] = odd;
                let line: String = line.into_iter().collect();
                match parse(&line) {
                    Err(e) => assert!(!e.to_string().contains("EN-123"), "{e}"),
                    Ok(p) => assert!(!format!("{p:?}").contains("EN-123"), "{line}"),
                }
            }
        }
    }

    #[test]
    fn a_value_swallowing_the_token_is_refused() {
        let merged = BASE.replace("host=h1 beskar7.token", "host=h1=beskar7.token");
        let (name, reason) = reason_of(parse(&format!("{merged} beskar7.token=x")).unwrap_err());
        assert_eq!(name, "beskar7.host");
        assert!(!reason.contains("EN-123"));
    }

    #[test]
    fn quoted_values_are_unquoted() {
        let p = parse(&BASE.replace("beskar7.host=h1", "beskar7.host=\"h1\"")).unwrap();
        assert_eq!(p.host, "h1");
        let p = parse(&BASE.replace("beskar7.host=h1", "\"beskar7.host=h1\"")).unwrap();
        assert_eq!(p.host, "h1");
    }
}
