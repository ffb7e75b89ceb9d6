//! The in-house Redfish client.
//!
//! One [`RedfishClient`] per BMC, built from a [`BmcConfig`]. It speaks only the few
//! operations the PhysicalHost controller needs (discovery, inventory, power, one-time PXE,
//! clearing the override) and absorbs the vendor quirks of `shared/design/redfish.md` §2.
//! Controllers and tests use it through the object-safe [`Bmc`] trait.
//!
//! Sessions are held only for the duration of one operation (login, work, logout — the
//! logout also runs on error paths and, in the background, when the operation is dropped);
//! the idle drift check ([`Bmc::check`]) costs one GET with Basic auth, or login/GET/logout
//! where only sessions work.

mod boot;
mod client;
mod config;
mod error;
mod model;
mod power;
mod session;
mod task;
mod tls;
mod transport;
mod vendor;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use client::{Discovery, RedfishClient};
pub use config::{AuthMode, BmcConfig, Credentials, Policy, TlsOptions};
pub use error::{RedfishError, Result};
pub use model::{
    BootMode, BootOverride, Health, Inventory, Nic, PowerAction, PowerOutcome, PowerState,
    SystemSnapshot,
};
pub use vendor::Vendor;

/// A boxed, sendable future: what the [`Bmc`] trait's methods return so it stays `dyn`-usable.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a controller needs from one BMC. Every method is one *operation*: it opens its own
/// session (when sessions are used) and always closes it before returning.
pub trait Bmc: Send + Sync {
    /// Enrollment: service root, system selection, the ComputerSystem and its NICs.
    fn inventory(&self) -> BoxFuture<'_, Result<Inventory>>;

    /// The idle drift check: one GET of the ComputerSystem (Basic where allowed, else
    /// login/GET/logout). The first call on a fresh client also discovers the system.
    fn check(&self) -> BoxFuture<'_, Result<SystemSnapshot>>;

    /// Power on/off/restart through `ComputerSystem.Reset`. Already being in the requested
    /// state is success. With `wait`, polls `PowerState` (within the same session) until the
    /// target is reached or the wait runs out.
    fn set_power(
        &self,
        action: PowerAction,
        wait: Option<Duration>,
    ) -> BoxFuture<'_, Result<PowerOutcome>>;

    /// One-time PXE boot (`Pxe`, `Once`), with `mode` when it must change (or the vendor
    /// needs the full triple), verified by reading the resource back.
    fn set_pxe_once(&self, mode: Option<BootMode>) -> BoxFuture<'_, Result<BootOverride>>;

    /// One-time PXE then power on (restart when already on), in one session.
    fn pxe_boot(
        &self,
        mode: Option<BootMode>,
        wait: Option<Duration>,
    ) -> BoxFuture<'_, Result<(BootOverride, PowerOutcome)>>;

    /// Clears the boot override (`Enabled: Disabled`, `Target: None`); a no-op when clear.
    fn clear_boot_override(&self) -> BoxFuture<'_, Result<BootOverride>>;
}
