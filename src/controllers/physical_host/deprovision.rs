//! Releasing a host on the BMC: power off, then clear the boot override, within a time budget.

use std::time::Duration;

use super::bmc::BmcConn;
use super::conditions::{BMC_TIMEOUT, Failure};
use crate::redfish::{Bmc, PowerAction, PowerState};

/// Powers the host off (waiting for Off) and clears any boot override, all within `budget`.
/// Returns the power state last read.
pub async fn power_off_and_clear(
    conn: &BmcConn<'_>,
    budget: Duration,
) -> Result<PowerState, Failure> {
    let work = async {
        let outcome = conn
            .run(
                "power_off",
                conn.client.set_power(PowerAction::Off, Some(budget)),
            )
            .await?;
        conn.run("clear_boot_override", conn.client.clear_boot_override())
            .await?;
        Ok::<_, crate::redfish::RedfishError>(outcome.state)
    };
    match tokio::time::timeout(budget, work).await {
        Ok(Ok(state)) => Ok(state),
        Ok(Err(e)) => Err(Failure::from(&e)),
        Err(_) => Err(Failure {
            reason: BMC_TIMEOUT,
            // No figures in the message: a retry that fails the same way must compute the same
            // status (no write, no hot loop).
            message: "the BMC did not power the host off and clear the boot override in time"
                .into(),
            retryable: true,
        }),
    }
}
