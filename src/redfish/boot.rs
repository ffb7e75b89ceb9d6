//! One-time PXE boot and clearing the override: the PATCH body each vendor needs, the
//! fallbacks (minimal body, `@Redfish.Settings`, retry during POST) and the read-back.

use serde_json::{Map, Value, json};

use super::client::RedfishClient;
use super::error::{RedfishError, Result};
use super::model::{Boot, BootMode, BootOverride, ComputerSystem};
use super::transport::{Conn, path_of};

#[derive(Default)]
struct Wanted {
    target: Option<&'static str>,
    enabled: &'static str,
    /// The mode to send, if any.
    mode: Option<String>,
    /// The mode must read back as this (it had to change).
    required_mode: Option<String>,
    send_enabled: bool,
}

fn body_of(w: &Wanted, with_mode: bool) -> Value {
    let mut boot = Map::new();
    if let Some(t) = w.target {
        boot.insert("BootSourceOverrideTarget".into(), json!(t));
    }
    if w.send_enabled {
        boot.insert("BootSourceOverrideEnabled".into(), json!(w.enabled));
    }
    if with_mode && let Some(m) = &w.mode {
        boot.insert("BootSourceOverrideMode".into(), json!(m));
    }
    json!({ "Boot": boot })
}

fn boot_of(sys: &ComputerSystem) -> Result<Boot> {
    sys.boot
        .clone()
        .ok_or_else(|| RedfishError::Unsupported("a boot override (the system has no Boot)".into()))
}

/// Sets `Pxe` + `Once` (+ mode when it must change or the vendor needs the full triple) and
/// verifies it by reading back.
pub(crate) async fn set_pxe_once(
    conn: &mut Conn,
    path: &str,
    client: &RedfishClient,
    mode: Option<BootMode>,
) -> Result<BootOverride> {
    let (sys, etag) = conn.get::<ComputerSystem>(path).await?;
    client.learn_vendor(&sys);
    let vendor = client.vendor();
    let boot = boot_of(&sys)?;
    if let Some(allowed) = &boot.target_allowed
        && !allowed.iter().any(|t| t == "Pxe")
    {
        return Err(RedfishError::Unsupported(format!(
            "PXE boot (allowed targets: {})",
            allowed.join(", ")
        )));
    }
    if let Some(allowed) = &boot.enabled_allowed
        && !allowed.iter().any(|t| t == "Once")
    {
        return Err(RedfishError::Unsupported(format!(
            "a one-time boot override (allowed: {})",
            allowed.join(", ")
        )));
    }
    let current_mode = boot.mode.clone();
    let mut w = Wanted {
        target: Some("Pxe"),
        enabled: "Once",
        // Some BMCs reject a PATCH that repeats an unchanged Enabled; Supermicro and AMI
        // need it every time.
        send_enabled: boot.enabled.as_deref() != Some("Once") || vendor.always_send_enabled(),
        ..Wanted::default()
    };
    match (mode, current_mode.as_deref()) {
        (Some(m), Some(cur)) if BootMode::parse(cur) != Some(m) => {
            if let Some(allowed) = &boot.mode_allowed
                && !allowed.iter().any(|a| a == m.as_str())
            {
                return Err(RedfishError::Unsupported(format!(
                    "boot mode {} (allowed: {})",
                    m.as_str(),
                    allowed.join(", ")
                )));
            }
            w.mode = Some(m.as_str().to_owned());
            w.required_mode = w.mode.clone();
        }
        (Some(m), None) => {
            tracing::warn!(
                mode = m.as_str(),
                "the BMC reports no BootSourceOverrideMode; not setting it"
            );
        }
        (m, cur) if vendor.needs_full_boot_triple() => {
            w.mode = m.map(|m| m.as_str().to_owned()).or(cur.map(str::to_owned));
            w.required_mode = w.mode.clone();
        }
        _ => {}
    }
    let (resource, triple_sent) = apply(conn, path, &sys, etag, &w).await?;
    let got = read_back(conn, &resource).await?;
    if let Err(e) = verify_pxe(&got, &w) {
        if triple_sent {
            return Err(e);
        }
        // Silent revert (Supermicro): resend everything once, then give up.
        tracing::warn!(error = %e, "boot override did not stick; resending the full triple");
        w.send_enabled = true;
        if w.mode.is_none() {
            w.mode = mode.map(|m| m.as_str().to_owned()).or(current_mode);
        }
        let (sys, etag) = conn.get::<ComputerSystem>(path).await?;
        let (resource, _) = apply(conn, path, &sys, etag, &w).await?;
        let got = read_back(conn, &resource).await?;
        verify_pxe(&got, &w)?;
        return Ok(got);
    }
    Ok(got)
}

fn verify_pxe(got: &BootOverride, w: &Wanted) -> Result<()> {
    let target_ok = got.target.as_deref() == w.target;
    // `Continuous` still boots PXE next; sushy-emulator always reports it. The override is
    // cleared after provisioning either way.
    let enabled_ok = matches!(got.enabled.as_deref(), Some("Once" | "Continuous"));
    let mode_ok = match (&w.required_mode, &got.mode) {
        (Some(want), Some(have)) => want == have,
        _ => true,
    };
    if target_ok && enabled_ok && mode_ok {
        Ok(())
    } else {
        Err(RedfishError::BootOverrideNotApplied(describe(got)))
    }
}

fn describe(b: &BootOverride) -> String {
    let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "absent".into());
    format!(
        "BootSourceOverrideTarget={} BootSourceOverrideEnabled={} BootSourceOverrideMode={}",
        s(&b.target),
        s(&b.enabled),
        s(&b.mode)
    )
}

async fn read_back(conn: &mut Conn, resource: &str) -> Result<BootOverride> {
    let (sys, _) = conn.get::<ComputerSystem>(resource).await?;
    Ok(BootOverride::from_boot(sys.boot.as_ref()))
}

/// PATCHes the System, falling back to a body without `BootSourceOverrideMode` (HPE ProLiant
/// DL160: Mode not writable) and then to the `@Redfish.Settings` object (iDRAC10: Boot
/// read-only on the System). An iLO "during POST" refusal is retried after a pause. Returns
/// the resource that took the PATCH and whether the full triple was sent.
async fn apply(
    conn: &mut Conn,
    path: &str,
    sys: &ComputerSystem,
    etag: Option<String>,
    w: &Wanted,
) -> Result<(String, bool)> {
    let settings = sys
        .settings
        .as_ref()
        .and_then(|s| s.object.as_ref())
        .and_then(|l| l.id.as_deref())
        .map(path_of)
        .filter(|p| p.trim_end_matches('/') != path.trim_end_matches('/'));
    let mut targets = vec![(path.to_owned(), etag)];
    if let Some(s) = settings {
        targets.push((s, None));
    }
    let mut last = None;
    for (i, (resource, mut tag)) in targets.into_iter().enumerate() {
        if i > 0 {
            tracing::debug!(settings = %resource, "System refused the boot PATCH; using its Settings object");
            tag = conn.get_value(&resource).await?.1;
        }
        let bodies: &[bool] = if w.mode.is_some() {
            &[true, false]
        } else {
            &[false]
        };
        for &with_mode in bodies {
            let body = body_of(w, with_mode);
            match patch_retrying(conn, &resource, &body, tag.clone()).await {
                Ok(()) => {
                    let triple = with_mode && w.send_enabled;
                    return Ok((resource, triple));
                }
                Err(e) if matches!(e.status(), Some(400 | 403 | 405 | 409)) => {
                    tracing::debug!(error = %e, with_mode, "boot PATCH refused");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(last.unwrap_or_else(|| RedfishError::Unsupported("a boot override".into())))
}

async fn patch_retrying(
    conn: &mut Conn,
    resource: &str,
    body: &Value,
    tag: Option<String>,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match conn.patch(resource, body, tag.clone()).await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.id_ends_with(&["UnableToModifyDuringSystemPOST"])
                    && attempt <= conn.policy().retries =>
            {
                tokio::time::sleep(conn.policy().retry_delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Clears the override (`Enabled: Disabled`, plus `Target: None`, or `Hdd` where `None` is not
/// allowed); a no-op when it already is clear (disabled, no target, or `Hdd`). Verified by
/// reading back.
pub(crate) async fn clear(
    conn: &mut Conn,
    path: &str,
    client: &RedfishClient,
) -> Result<BootOverride> {
    let (sys, etag) = conn.get::<ComputerSystem>(path).await?;
    client.learn_vendor(&sys);
    let boot = boot_of(&sys)?;
    let current = BootOverride::from_boot(Some(&boot));
    if is_clear(&current) {
        return Ok(current);
    }
    let allowed = |v: &str| {
        boot.target_allowed
            .as_ref()
            .is_none_or(|a| a.iter().any(|t| t == v))
    };
    // `None` where allowed; else `Hdd` (sushy-emulator lists no `None`, ignores `Enabled` and
    // rejects a body without a target): the next boot is then from disk either way.
    let target = if allowed("None") {
        Some("None")
    } else if allowed("Hdd") {
        Some("Hdd")
    } else {
        None
    };
    let w = Wanted {
        target,
        enabled: "Disabled",
        send_enabled: true,
        mode: client
            .vendor()
            .needs_full_boot_triple()
            .then(|| boot.mode.clone())
            .flatten(),
        required_mode: None,
    };
    // The same fallbacks as for setting it (minimal body, Settings object, during POST).
    let (resource, _) = apply(conn, path, &sys, etag, &w).await?;
    let got = read_back(conn, &resource).await?;
    if is_clear(&got) {
        Ok(got)
    } else {
        Err(RedfishError::BootOverrideNotApplied(describe(&got)))
    }
}

/// No override, or one that boots from disk.
fn is_clear(b: &BootOverride) -> bool {
    b.enabled.as_deref() == Some("Disabled")
        || matches!(b.target.as_deref(), None | Some("None" | "Hdd"))
}
