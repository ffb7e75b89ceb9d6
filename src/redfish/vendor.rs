//! Vendor detection (ServiceRoot `Vendor`, `Product`, `Oem` keys, System `Manufacturer`) and
//! the quirk switches that depend on it.

/// The BMC family, as far as the quirks care.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vendor {
    Hpe,
    Dell,
    Lenovo,
    Supermicro,
    /// AMI MegaRAC based: Gigabyte, ASRock Rack, Lenovo TSM.
    Ami,
    OpenBmc,
    Intel,
    #[default]
    Other,
}

impl Vendor {
    /// Classifies a vendor, product, OEM key or manufacturer string.
    pub fn detect(hint: &str) -> Self {
        let h = hint.to_ascii_lowercase();
        let has = |s: &str| h.contains(s);
        if has("hpe") || has("hewlett") || h == "hp" {
            Self::Hpe
        } else if has("dell") {
            Self::Dell
        } else if has("supermicro") || has("super micro") {
            Self::Supermicro
        } else if h == "ami"
            || h.starts_with("ami ")
            || has("american megatrends")
            || has("giga")
            || has("asrock")
        {
            Self::Ami
        } else if has("lenovo") {
            Self::Lenovo
        } else if has("openbmc") {
            Self::OpenBmc
        } else if has("intel") {
            Self::Intel
        } else {
            Self::Other
        }
    }

    /// From the first hint that names a known vendor.
    pub(crate) fn from_hints<'a>(hints: impl IntoIterator<Item = &'a str>) -> Self {
        hints
            .into_iter()
            .map(Self::detect)
            .find(|v| *v != Self::Other)
            .unwrap_or(Self::Other)
    }

    /// Needs `Target`, `Enabled` and `Mode` in every boot PATCH: AMI (ironic
    /// `VENDORS_REQUIRING_FULL_BOOT_REQUEST`) and Supermicro (reverts the mode otherwise).
    pub(crate) fn needs_full_boot_triple(self) -> bool {
        matches!(self, Self::Ami | Self::Supermicro)
    }

    /// Supermicro reverts `Enabled` unless it is resent with each target.
    pub(crate) fn always_send_enabled(self) -> bool {
        matches!(self, Self::Supermicro | Self::Ami)
    }
}
