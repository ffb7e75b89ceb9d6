//! The agent's kernel parameters (inspector-contract.md §4), read from the command line the
//! boot script rendered, and checked the way the agent checks them.

use base64::Engine;
use std::collections::HashMap;
use std::time::Duration;

/// A value that must never reach a log: `Debug` shows only that it exists.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the agent hands the server over to its operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Write the target image to disk, report, reboot into it.
    Image,
    /// Load the target kernel and jump to it without a firmware boot.
    Kexec,
}

/// The parameters of one boot, checked.
#[derive(Debug, Clone)]
pub struct BootParams {
    /// The callback base URL, without a trailing `/`.
    pub api: String,
    pub namespace: String,
    pub host: String,
    pub token: Secret,
    /// The PEM of the one CA the callbacks trust.
    pub ca_pem: String,
    pub target: Option<String>,
    pub target_digest: Option<String>,
    pub provider_id: Option<String>,
    pub timeout: Option<Duration>,
    pub handoff: Handoff,
    pub config_url: Option<Secret>,
    pub clean: bool,
    pub bootif: Option<String>,
}

/// Words as Linux splits the command line: whitespace, except inside double quotes (dropped).
fn words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

impl BootParams {
    /// The MAC `BOOTIF` names, colon-separated, lower case.
    pub fn bootif_mac(&self) -> Option<String> {
        self.bootif
            .as_deref()
            .and_then(|b| b.strip_prefix("01-"))
            .map(|m| m.replace('-', ":").to_ascii_lowercase())
    }

    /// Reads the `beskar7.*` parameters and `BOOTIF`; errors name the parameter but never quote
    /// the token.
    pub fn parse(cmdline: &str) -> Result<BootParams, String> {
        let mut params: HashMap<String, String> = HashMap::new();
        for word in words(cmdline) {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            if (key.starts_with("beskar7.") || key == "BOOTIF")
                && params.insert(key.to_string(), value.to_string()).is_some()
            {
                return Err(format!("{key} is given twice"));
            }
        }
        let take = |key: &str| params.get(key).cloned();
        let required = |key: &str| {
            take(key)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{key} is missing"))
        };
        let api = required("beskar7.api")?;
        let parsed = reqwest::Url::parse(&api).map_err(|e| format!("beskar7.api: {e}"))?;
        if parsed.scheme() != "https" {
            return Err("beskar7.api must be an https:// URL".into());
        }
        let token = required("beskar7.token")?;
        if !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("beskar7.token is not base64url".into());
        }
        let ca = required("beskar7.ca")?;
        let ca_pem = base64::engine::general_purpose::STANDARD
            .decode(ca.trim_end_matches('='))
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD.decode(ca.trim_end_matches('='))
            })
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("beskar7.ca is not base64 of a PEM")?;
        let clean = match take("beskar7.mode").as_deref() {
            None => false,
            Some("clean") => true,
            Some(other) => return Err(format!("beskar7.mode={other:?} is unknown")),
        };
        let handoff = match take("beskar7.handoff").as_deref() {
            None | Some("image") => Handoff::Image,
            Some("kexec") => Handoff::Kexec,
            Some(other) => return Err(format!("beskar7.handoff={other:?} is unknown")),
        };
        let timeout = match take("beskar7.timeout") {
            None => None,
            Some(t) => Some(Duration::from_secs(
                t.parse::<u64>()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("beskar7.timeout={t:?} is not a positive number"))?,
            )),
        };
        let target_digest = take("beskar7.target-digest");
        if let Some(d) = &target_digest {
            let hex = d.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "beskar7.target-digest={d:?} is not sha256:<64 hex>"
                ));
            }
        }
        let params = BootParams {
            api: api.trim_end_matches('/').to_string(),
            namespace: required("beskar7.namespace")?,
            host: required("beskar7.host")?,
            token: Secret::new(token),
            ca_pem,
            target: take("beskar7.target"),
            target_digest,
            provider_id: take("beskar7.provider-id"),
            timeout,
            handoff,
            config_url: take("beskar7.config-url").map(Secret::new),
            clean,
            bootif: take("BOOTIF"),
        };
        if let Some(b) = &params.bootif {
            let mac = b.strip_prefix("01-").unwrap_or("");
            let ok = mac.len() == 17
                && mac.split('-').count() == 6
                && mac
                    .split('-')
                    .all(|o| o.len() == 2 && o.bytes().all(|c| c.is_ascii_hexdigit()));
            if !ok {
                return Err(format!("BOOTIF={b:?} is not 01-aa-bb-cc-dd-ee-ff"));
            }
        }
        if let Some(p) = &params.provider_id {
            let well_formed = p
                .split_once("://")
                .is_some_and(|(scheme, id)| !scheme.is_empty() && !id.is_empty());
            if !well_formed {
                return Err(format!("beskar7.provider-id={p:?} is not <scheme>://<id>"));
            }
        }
        if !params.clean {
            if params.target.is_none() {
                return Err("beskar7.target is missing".into());
            }
            if params.provider_id.is_none() {
                return Err("beskar7.provider-id is missing".into());
            }
            if params.handoff == Handoff::Image && params.target_digest.is_none() {
                return Err(
                    "beskar7.target-digest is missing (required for an Image handoff)".into(),
                );
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str =
        include_str!("../../../../shared/fixtures/inspector-contract/golden_boot_cmdline.txt");

    fn golden_kernel_line() -> &'static str {
        GOLDEN
            .lines()
            .find_map(|l| l.strip_prefix("kernel "))
            .unwrap()
    }

    #[test]
    fn the_golden_command_line_parses() {
        let p = BootParams::parse(golden_kernel_line()).unwrap();
        assert_eq!(p.api, "https://beskar7.example.invalid:8082");
        assert_eq!(
            (p.namespace.as_str(), p.host.as_str()),
            ("contract-test", "host-01")
        );
        assert_eq!(p.token.expose(), "test-token-0123456789abcdef");
        assert_eq!(p.ca_pem, "test-ca-pem-placeholder");
        assert_eq!(p.provider_id.as_deref(), Some("b7://contract-test/host-01"));
        assert_eq!(p.handoff, Handoff::Image);
        assert_eq!(p.bootif.as_deref(), Some("01-52-54-00-12-34-56"));
        assert!(!p.clean);
        assert_eq!(format!("{:?}", p.token), "<redacted>");
        assert!(!format!("{p:?}").contains("test-token"));
    }

    #[test]
    fn a_cleaning_line_needs_no_target() {
        let p = BootParams::parse(
            "beskar7.api=https://1.2.3.4:8082 beskar7.namespace=n beskar7.host=h beskar7.token=abc \
             beskar7.ca=eA== beskar7.timeout=60 beskar7.mode=clean",
        )
        .unwrap();
        assert!(p.clean);
        assert_eq!(p.timeout, Some(Duration::from_secs(60)));
    }

    #[test]
    fn errors_name_the_parameter_not_the_token() {
        let base = "beskar7.api=https://1.2.3.4 beskar7.namespace=n beskar7.host=h beskar7.ca=eA== beskar7.target=http://t beskar7.provider-id=b7://n/h/m";
        let e = BootParams::parse(&format!("{base} beskar7.token=s3cr3t!")).unwrap_err();
        assert!(e.contains("beskar7.token") && !e.contains("s3cr3t"), "{e}");
        let e = BootParams::parse(&format!("{base} beskar7.token=abc")).unwrap_err();
        assert!(e.contains("target-digest"), "{e}");
        assert!(
            BootParams::parse(&format!("{base} beskar7.token=abc beskar7.handoff=kexec")).is_ok()
        );
        let e = BootParams::parse(&format!(
            "{base} beskar7.token=abc beskar7.handoff=kexec BOOTIF=52-54-00-00-00-01"
        ))
        .unwrap_err();
        assert!(e.starts_with("BOOTIF"), "{e}");
        let p = BootParams::parse(&format!(
            "{base} beskar7.token=abc beskar7.handoff=kexec BOOTIF=01-52-54-00-AA-00-01"
        ))
        .unwrap();
        assert_eq!(p.bootif_mac().as_deref(), Some("52:54:00:aa:00:01"));
        let e = BootParams::parse(&format!(
            "{} beskar7.token=abc beskar7.handoff=kexec",
            base.replace("b7://n/h/m", "host-1")
        ))
        .unwrap_err();
        assert!(e.contains("provider-id"), "{e}");
        let e = BootParams::parse(&format!("{base} beskar7.token=a beskar7.token=b")).unwrap_err();
        assert!(e.contains("twice"));
        assert_eq!(words(r#"a "b c" d="e f""#), ["a", "b c", "d=e f"]);
    }
}
