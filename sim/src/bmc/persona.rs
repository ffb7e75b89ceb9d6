//! Vendor personas: the quirks real BMCs have in exactly the operations Beskar7 uses, as data.
//! Each quirk cites where it was seen (shared/design/redfish.md §2).

use std::fmt;
use std::str::FromStr;

/// How `Location` comes back from a session login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionLocation {
    /// `/redfish/v1/SessionService/Sessions/<id>` (most BMCs).
    Path,
    /// `https://host/redfish/v1/...` (clients must keep only the path).
    Absolute,
    /// No `Location` at all; the session's `@odata.id` is in the body (Cisco CIMC 4.1).
    Missing,
}

/// The form of the ETags a BMC hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtagForm {
    None,
    Strong,
    /// `W/"..."` (HPE iLO).
    Weak,
}

/// Everything a persona changes; see [`Persona::quirks`].
#[derive(Debug, Clone)]
pub struct Quirks {
    pub vendor: &'static str,
    /// `None` where the real BMC omits the field (OpenBMC).
    pub manufacturer: Option<&'static str>,
    pub model: Option<&'static str>,
    pub system_id: &'static str,
    /// Basic auth accepted (iDRAC10 ≥ 1.30.10.50: "Unadvertised", so AccessDenied).
    pub basic_auth: bool,
    /// A session login that also carries a Basic `Authorization` header is refused (iDRAC9).
    pub rejects_basic_on_login: bool,
    pub session_limit: usize,
    /// 403 (XCC) or 503 (XCC3) once `session_limit` sessions exist.
    pub session_limit_status: u16,
    pub session_location: SessionLocation,
    pub etag: EtagForm,
    /// Every PATCH needs `If-Match`: 428 without, 412 on mismatch (Lenovo TSM / AMI).
    pub require_if_match: bool,
    /// A weak tag sent back in `If-Match` is a mismatch (412); the same tag without `W/` matches.
    pub weak_if_match_rejected: bool,
    /// `If-Match` on an action POST gives 412 (iDRAC10).
    pub if_match_on_actions_rejected: bool,
    /// `BootSourceOverrideEnabled@Redfish.AllowableValues`.
    pub override_enabled_values: &'static [&'static str],
    /// The Boot PATCH must carry Target, Enabled and Mode together (AMI, ASRock Rack).
    pub full_boot_triple_required: bool,
    /// `BootSourceOverrideMode` can be written (HPE ProLiant DL160: 400 when present at all).
    pub mode_writable: bool,
    /// A Boot PATCH without Mode silently reverts Mode to Legacy, and one without Enabled
    /// reverts Enabled to Once; the PATCH still answers 200 (Supermicro).
    pub reverts_unsent_boot_fields: bool,
    /// Reset types listed inline on the action; otherwise only through `@Redfish.ActionInfo`
    /// (OpenBMC, Gigabyte).
    pub reset_types_inline: bool,
    /// `On` when on (or `ForceOff` when off) is 400 `InvalidOperationForSystemState` (HPE iLO).
    pub already_in_state_error: bool,
    /// Reset answers 200 with a `Base.Success` body instead of 204 (HPE iLO).
    pub reset_success_body: bool,
    /// Reset answers 202 with a task monitor that runs until the power transition completes.
    pub reset_task_monitor: bool,
    /// PATCH answers 200 with the resource instead of 204 (Lenovo XCC).
    pub patch_returns_body: bool,
    /// The System links its host NICs under `EthernetInterfaces` (OpenBMC does not).
    pub host_nics: bool,
}

/// A vendor persona; `generic` behaves as DSP0266 says a service should.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Persona {
    Generic,
    Ilo,
    Idrac,
    Supermicro,
    Xcc,
    Ami,
    Openbmc,
    /// Older firmware whose one-time override is not supported: only `Continuous` and `Disabled`.
    NoOnce,
}

pub const ALL: &[Persona] = &[
    Persona::Generic,
    Persona::Ilo,
    Persona::Idrac,
    Persona::Supermicro,
    Persona::Xcc,
    Persona::Ami,
    Persona::Openbmc,
    Persona::NoOnce,
];

const STANDARD: Quirks = Quirks {
    vendor: "Beskar7 Sim",
    manufacturer: Some("Beskar7 Sim"),
    model: Some("Virtual Server"),
    system_id: "1",
    basic_auth: true,
    rejects_basic_on_login: false,
    session_limit: 64,
    session_limit_status: 503,
    session_location: SessionLocation::Path,
    etag: EtagForm::Strong,
    require_if_match: false,
    weak_if_match_rejected: false,
    if_match_on_actions_rejected: false,
    override_enabled_values: &["Disabled", "Once", "Continuous"],
    full_boot_triple_required: false,
    mode_writable: true,
    reverts_unsent_boot_fields: false,
    reset_types_inline: true,
    already_in_state_error: false,
    reset_success_body: false,
    reset_task_monitor: false,
    patch_returns_body: false,
    host_nics: true,
};

impl Persona {
    pub fn name(self) -> &'static str {
        match self {
            Persona::Generic => "generic",
            Persona::Ilo => "ilo",
            Persona::Idrac => "idrac",
            Persona::Supermicro => "supermicro",
            Persona::Xcc => "xcc",
            Persona::Ami => "ami",
            Persona::Openbmc => "openbmc",
            Persona::NoOnce => "no-once",
        }
    }

    pub fn quirks(self) -> Quirks {
        match self {
            Persona::Generic => STANDARD,
            Persona::Ilo => Quirks {
                vendor: "HPE",
                manufacturer: Some("HPE"),
                model: Some("ProLiant DL325 Gen10 Plus"),
                session_limit: 16,
                etag: EtagForm::Weak,
                weak_if_match_rejected: true,
                already_in_state_error: true,
                reset_success_body: true,
                ..STANDARD
            },
            Persona::Idrac => Quirks {
                vendor: "Dell",
                manufacturer: Some("Dell Inc."),
                model: Some("PowerEdge R6515"),
                system_id: "System.Embedded.1",
                basic_auth: false,
                rejects_basic_on_login: true,
                session_location: SessionLocation::Absolute,
                if_match_on_actions_rejected: true,
                ..STANDARD
            },
            Persona::Supermicro => Quirks {
                vendor: "Supermicro",
                manufacturer: Some("Supermicro"),
                model: Some("SYS-510T-MR"),
                reverts_unsent_boot_fields: true,
                session_limit: 16,
                ..STANDARD
            },
            Persona::Xcc => Quirks {
                vendor: "Lenovo",
                manufacturer: Some("Lenovo"),
                model: Some("ThinkSystem SR650"),
                session_limit: 16,
                session_limit_status: 403,
                override_enabled_values: &["Once", "Disabled"],
                patch_returns_body: true,
                ..STANDARD
            },
            Persona::Ami => Quirks {
                vendor: "AMI",
                manufacturer: Some("GIGA-BYTE TECHNOLOGY CO., LTD"),
                model: Some("H262-Z63"),
                system_id: "Self",
                require_if_match: true,
                full_boot_triple_required: true,
                reset_types_inline: false,
                reset_task_monitor: true,
                session_location: SessionLocation::Missing,
                ..STANDARD
            },
            Persona::Openbmc => Quirks {
                vendor: "OpenBMC",
                manufacturer: None,
                model: None,
                system_id: "system",
                etag: EtagForm::None,
                reset_types_inline: false,
                host_nics: false,
                ..STANDARD
            },
            Persona::NoOnce => Quirks {
                override_enabled_values: &["Disabled", "Continuous"],
                ..STANDARD
            },
        }
    }
}

impl fmt::Display for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Persona {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.iter().copied().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|p| p.name()).collect();
            format!("unknown persona {s:?}; known: {}", names.join(", "))
        })
    }
}
