//! The Redfish client against mock BMCs serving real vendor payloads.

mod auth;
mod boot;
mod discovery;
mod errors;
mod etag;
mod mock;
mod power;
mod sim_personas;
mod sushy;
mod task;
mod tls;

use std::time::Duration;

use beskar7::redfish::{AuthMode, BmcConfig, Credentials, Policy, RedfishClient};

use mock::{MockBmc, PASSWORD, USER};

/// Timing shrunk for tests.
pub fn fast_policy() -> Policy {
    Policy {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retries: 3,
        retry_delay: Duration::from_millis(5),
        power_poll_interval: Duration::from_millis(5),
        task_poll_interval: Duration::from_millis(5),
        task_poll_max: Duration::from_millis(20),
        task_timeout: Duration::from_secs(5),
        etag_match: true,
    }
}

pub fn config(url: &str, auth: AuthMode) -> BmcConfig {
    let mut c = BmcConfig::new(url, Credentials::new(USER, PASSWORD));
    c.auth = auth;
    c.policy = fast_policy();
    c
}

pub fn client(bmc: &MockBmc, auth: AuthMode) -> RedfishClient {
    RedfishClient::new(config(&bmc.url(), auth)).expect("client")
}

pub const DL325_SYS: &str = "/redfish/v1/Systems/1";
pub const OPENBMC_SYS: &str = "/redfish/v1/Systems/system";
pub const INTEL_SYS: &str = "/redfish/v1/Systems/QSBP74100021";
pub const DELL_SYS: &str = "/redfish/v1/Systems/System.Embedded.1";
