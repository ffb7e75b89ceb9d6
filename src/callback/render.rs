//! The per-host iPXE script of `/api/v1/boot/...` (inspector contract §4): a pure function of
//! its inputs, so a re-fetch within the nonce's window renders the same bytes.
//!
//! Every value is checked against a narrow character set before it reaches the script: no
//! whitespace, quotes, backslashes, `$` (iPXE expands `${...}`) or control characters, so no value
//! can add an iPXE command or a kernel parameter.

use std::net::Ipv4Addr;

use crate::api::{Handoff, ProvisioningIntent};

/// The kernel command line must stay under this many bytes (x86 truncates at 2048, silently).
pub const MAX_KERNEL_LINE: usize = 1900;

/// What the boot is for.
#[derive(Clone, Copy, Debug)]
pub enum BootPurpose<'a> {
    /// Inspect and provision for the claiming machine.
    Provision {
        intent: &'a ProvisioningIntent,
        /// `beskar7.config-url` (Kexec): `<boot or callback URL>/api/v1/config/<ns>/<host>/<nonce>`.
        config_url: Option<&'a str>,
    },
    /// Wipe the disks after a release; boots the agent from `inspection_image_url`.
    Clean { inspection_image_url: &'a str },
}

/// The inputs of one boot script.
#[derive(Clone, Copy, Debug)]
pub struct BootInputs<'a> {
    /// `beskar7.api`: the external callback base URL.
    pub api_url: &'a str,
    pub namespace: &'a str,
    pub host: &'a str,
    /// The bearer token (never logged; `Debug` of the inputs is not logged either).
    pub token: &'a str,
    /// `beskar7.ca`: base64 of the CA's PEM.
    pub ca_base64: &'a str,
    /// The booting NIC's MAC, normalized (`aa:bb:cc:dd:ee:ff`), for `BOOTIF`.
    pub mac: Option<&'a str>,
    /// `beskar7.timeout` in seconds.
    pub timeout_secs: Option<u64>,
    pub purpose: BootPurpose<'a>,
}

/// Why a script cannot be rendered; recorded on the host (`boot: ...`). Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{param} is not usable: {why}")]
    Invalid { param: &'static str, why: String },
    #[error(
        "the kernel command line would be {len} bytes, over the {MAX_KERNEL_LINE}-byte limit (x86 truncates it); shorten the image URLs or hints"
    )]
    TooLong { len: usize },
}

fn invalid(param: &'static str, why: impl Into<String>) -> RenderError {
    RenderError::Invalid {
        param,
        why: why.into(),
    }
}

/// Characters allowed in a rendered URL: RFC 3986's unreserved and reserved characters and `%`,
/// minus `'` (a quote) and `$` (iPXE settings expansion).
fn url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!&()*+,;=%".contains(c)
}

/// An http(s) URL with a host, of safe characters only. Quoted in errors only when it is safe.
pub fn check_url(param: &'static str, value: &str) -> Result<(), RenderError> {
    if value.is_empty() {
        return Err(invalid(param, "empty"));
    }
    if let Some(c) = value.chars().find(|c| !url_char(*c)) {
        return Err(invalid(
            param,
            format!("contains the character {c:?}, which cannot go on an iPXE line"),
        ));
    }
    let url = url::Url::parse(value).map_err(|e| invalid(param, format!("{value:?}: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(
            param,
            format!("{value:?} is not an http or https URL"),
        ));
    }
    // The url crate forgives `http:///x` (host "x"); iPXE would not.
    let after_scheme = value.split_once("://").map(|(_, rest)| rest);
    if url.host_str().is_none_or(str::is_empty)
        || after_scheme.is_none_or(|r| r.is_empty() || r.starts_with('/'))
    {
        return Err(invalid(param, format!("{value:?} has no host")));
    }
    Ok(())
}

fn check_charset(
    param: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    what: &str,
) -> Result<(), RenderError> {
    if value.is_empty() || value.len() > max || !value.chars().all(allowed) {
        return Err(invalid(
            param,
            format!("must be 1 to {max} characters of {what}"),
        ));
    }
    Ok(())
}

/// A Kubernetes name (RFC 1123 subdomain).
fn check_name(param: &'static str, value: &str) -> Result<(), RenderError> {
    check_charset(
        param,
        value,
        253,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.',
        "lowercase letters, digits, '-' and '.'",
    )
}

/// `sha256:<64 lowercase hex>`.
pub fn check_digest(value: &str) -> Result<(), RenderError> {
    let ok = value.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "beskar7.target-digest",
            "must be sha256: followed by 64 lowercase hexadecimal digits",
        ))
    }
}

/// A device path under /dev of safe characters, without `..`.
fn check_device(value: &str) -> Result<(), RenderError> {
    let ok = value.strip_prefix("/dev/").is_some_and(|rest| {
        !rest.is_empty()
            && !value.split('/').any(|s| s == "..")
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._:/+-".contains(c))
    });
    if ok && value.len() <= 256 {
        Ok(())
    } else {
        Err(invalid(
            "beskar7.disk",
            "must be a path under /dev/ of letters, digits and . _ : / + - (no ..)",
        ))
    }
}

/// `<ip>::[<gw>]:<mask>[:<dns>]`, IPv4, mask dotted or a prefix length.
pub fn check_static_ip(value: &str) -> Result<(), RenderError> {
    let bad = || {
        invalid(
            "beskar7.ip",
            "must be <ip>::[<gateway>]:<netmask or prefix length>[:<dns>] with IPv4 addresses",
        )
    };
    let parts: Vec<&str> = value.split(':').collect();
    if !(parts.len() == 4 || parts.len() == 5) || !parts[1].is_empty() {
        return Err(bad());
    }
    let ip = |s: &str| s.parse::<Ipv4Addr>().is_ok();
    let mask_ok = ip(parts[3]) || parts[3].parse::<u8>().is_ok_and(|p| p <= 32);
    let gw_ok = parts[2].is_empty() || ip(parts[2]);
    let dns_ok = parts.len() == 4 || ip(parts[4]);
    if ip(parts[0]) && gw_ok && mask_ok && dns_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A MAC address with `:` or `-` separators (any case), normalized to lowercase with colons.
pub fn normalize_mac(value: &str) -> Option<String> {
    let parts: Vec<&str> = value.split([':', '-']).collect();
    let sep_ok = value.len() == 17 && (!value.contains(':') || !value.contains('-'));
    if parts.len() != 6 || !sep_ok {
        return None;
    }
    if !parts
        .iter()
        .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

fn base64url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The `beskar7.*`/`BOOTIF` parameters, in a stable order.
pub fn parameters(inputs: &BootInputs<'_>) -> Result<Vec<(&'static str, String)>, RenderError> {
    let mut p: Vec<(&'static str, String)> = Vec::new();
    check_url("beskar7.api", inputs.api_url)?;
    if !inputs.api_url.starts_with("https://") {
        return Err(invalid("beskar7.api", "the callback URL must be https"));
    }
    check_name("beskar7.namespace", inputs.namespace)?;
    check_name("beskar7.host", inputs.host)?;
    check_charset(
        "beskar7.token",
        inputs.token,
        128,
        base64url_char,
        "base64url characters",
    )?;
    check_charset(
        "beskar7.ca",
        inputs.ca_base64,
        4096,
        |c| c.is_ascii_alphanumeric() || "+/=".contains(c),
        "base64 characters",
    )?;
    p.push(("beskar7.api", inputs.api_url.to_owned()));
    p.push(("beskar7.namespace", inputs.namespace.to_owned()));
    p.push(("beskar7.host", inputs.host.to_owned()));
    p.push(("beskar7.token", inputs.token.to_owned()));
    match inputs.purpose {
        BootPurpose::Provision { intent, config_url } => {
            let images = &intent.images;
            check_url("beskar7.target", &images.target_image_url)?;
            p.push(("beskar7.target", images.target_image_url.clone()));
            match (&images.target_image_digest, intent.handoff) {
                (Some(d), _) => {
                    check_digest(d)?;
                    p.push(("beskar7.target-digest", d.clone()));
                }
                (None, Handoff::Image) => {
                    return Err(invalid(
                        "beskar7.target-digest",
                        "handoff Image needs targetImageDigest",
                    ));
                }
                (None, Handoff::Kexec) => {}
            }
            check_charset(
                "beskar7.provider-id",
                &intent.provider_id,
                512,
                |c| c.is_ascii_alphanumeric() || "-._~/:".contains(c),
                "letters, digits and - . _ ~ / :",
            )?;
            if !intent.provider_id.contains("://") {
                return Err(invalid(
                    "beskar7.provider-id",
                    "must be <scheme>://<id>, e.g. b7://<namespace>/<host>/<machine>",
                ));
            }
            p.push(("beskar7.provider-id", intent.provider_id.clone()));
            p.push(("beskar7.ca", inputs.ca_base64.to_owned()));
            let hints = intent.root_device_hints.as_ref();
            if let Some(d) = hints.and_then(|h| h.device_name.as_ref()) {
                check_device(d)?;
                p.push(("beskar7.disk", d.clone()));
            }
            let id_char = |c: char| c.is_ascii_alphanumeric() || "._:+-".contains(c);
            if let Some(s) = hints.and_then(|h| h.serial_number.as_ref()) {
                check_charset(
                    "beskar7.disk-serial",
                    s,
                    128,
                    id_char,
                    "letters, digits and . _ : + -",
                )?;
                p.push(("beskar7.disk-serial", s.clone()));
            }
            if let Some(s) = hints.and_then(|h| h.wwn.as_ref()) {
                check_charset(
                    "beskar7.disk-wwn",
                    s,
                    128,
                    id_char,
                    "letters, digits and . _ : + -",
                )?;
                p.push(("beskar7.disk-wwn", s.clone()));
            }
            if let Some(gb) = hints.and_then(|h| h.min_size_gb) {
                if gb < 1 {
                    return Err(invalid("beskar7.disk-min-gb", "must be at least 1"));
                }
                p.push(("beskar7.disk-min-gb", gb.to_string()));
            }
            if let Some(ip) = &intent.static_ip {
                check_static_ip(ip)?;
                p.push(("beskar7.ip", ip.clone()));
            }
            if let Some(t) = inputs.timeout_secs {
                p.push(("beskar7.timeout", t.to_string()));
            }
            if intent.handoff == Handoff::Kexec {
                p.push(("beskar7.handoff", "kexec".into()));
            }
            if let Some(c) = &images.configuration_url {
                check_url("beskar7.config", c)?;
                p.push(("beskar7.config", c.clone()));
            }
            if let Some(c) = config_url {
                // Its last segment is the configuration nonce: never quote it in an error.
                check_url("beskar7.config-url", c).map_err(|_| {
                    invalid(
                        "beskar7.config-url",
                        "the boot or callback URL does not make a usable URL",
                    )
                })?;
                p.push(("beskar7.config-url", c.to_owned()));
            }
        }
        BootPurpose::Clean { .. } => {
            p.push(("beskar7.ca", inputs.ca_base64.to_owned()));
            if let Some(t) = inputs.timeout_secs {
                p.push(("beskar7.timeout", t.to_string()));
            }
            p.push(("beskar7.mode", "clean".into()));
        }
    }
    if let Some(mac) = inputs.mac {
        let mac = normalize_mac(mac).ok_or_else(|| invalid("BOOTIF", "malformed MAC address"))?;
        p.push(("BOOTIF", format!("01-{}", mac.replace(':', "-"))));
    }
    Ok(p)
}

/// The iPXE script. With an `inspectionImageURL` ending in `.ipxe` it sets `beskar7-args` and
/// chains that script; otherwise it boots `<url>/vmlinuz` with `<url>/initrd.img`.
pub fn render(inputs: &BootInputs<'_>) -> Result<String, RenderError> {
    let image = match inputs.purpose {
        BootPurpose::Provision { intent, .. } => intent.images.inspection_image_url.as_str(),
        BootPurpose::Clean {
            inspection_image_url,
        } => inspection_image_url,
    };
    check_url("inspectionImageURL", image)?;
    let params = parameters(inputs)?
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    if image.ends_with(".ipxe") {
        if params.len() >= MAX_KERNEL_LINE {
            return Err(RenderError::TooLong { len: params.len() });
        }
        return Ok(format!(
            "#!ipxe\nset beskar7-args {params}\nchain {image}\n"
        ));
    }
    let base = image.trim_end_matches('/');
    // `initrd=` is needed by UEFI iPXE; `loglevel=4` keeps the line (with the token) off the console.
    let line = format!("{base}/vmlinuz initrd=initrd.img loglevel=4 {params}");
    if line.len() >= MAX_KERNEL_LINE {
        return Err(RenderError::TooLong { len: line.len() });
    }
    Ok(format!(
        "#!ipxe\nkernel {line}\ninitrd {base}/initrd.img\nboot\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_normalize_from_colons_or_hyphens_only() {
        assert_eq!(
            normalize_mac("52-54-00-AB-cd-EF").as_deref(),
            Some("52:54:00:ab:cd:ef")
        );
        assert_eq!(
            normalize_mac("52:54:00:ab:cd:ef").as_deref(),
            Some("52:54:00:ab:cd:ef")
        );
        for bad in [
            "52:54:00:ab:cd",
            "52:54-00:ab:cd:ef",
            "52:54:00:ab:cd:eg",
            "52:54:00:ab:cd:ef ",
            "5254.00ab.cdef.00",
            "",
        ] {
            assert_eq!(normalize_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn static_ip_forms() {
        for ok in [
            "192.168.150.10::192.168.150.1:24",
            "10.0.0.5:::255.255.255.0:10.0.0.1",
        ] {
            assert_eq!(check_static_ip(ok), Ok(()), "{ok}");
        }
        for bad in [
            "192.168.150.10:x:192.168.150.1:24",
            "192.168.150.10::192.168.150.1:33",
            "192.168.150.10",
            "192.168.150.10::gw:24",
            "fe80::1::24",
        ] {
            assert!(check_static_ip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_with_unsafe_characters_are_refused() {
        assert_eq!(check_url("x", "http://a.example/b?c=d&e=f"), Ok(()));
        for bad in [
            "http://a.example/${net0/mac}",
            "http://a.example/a b",
            "http://a.example/a'b",
            "http://a.example/a\"b",
            "http://a.example/a\nshell",
            "ftp://a.example/x",
            "http:///x",
            "not a url",
        ] {
            assert!(check_url("x", bad).is_err(), "{bad:?}");
        }
    }
}
