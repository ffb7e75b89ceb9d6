//! One reconcile's connection to a host's BMC: a fresh [`RedfishClient`] built from the
//! Secrets just read (so no credentials outlive the reconcile), seeded with what discovery
//! learned before (paths only), with every operation metered.

use std::future::Future;

use kube::ResourceExt;

use super::conditions::Failure;
use super::credentials::BmcSecrets;
use crate::api::physical_host::PhysicalHost;
use crate::controllers::Context;
use crate::redfish::{BmcConfig, RedfishClient, RedfishError};

pub struct BmcConn<'a> {
    ctx: &'a Context,
    pub client: RedfishClient,
    /// The discovery cache key: the host and the connection it describes.
    key: String,
}

impl<'a> BmcConn<'a> {
    pub fn open(
        ctx: &'a Context,
        host: &PhysicalHost,
        secrets: BmcSecrets,
    ) -> Result<Self, Failure> {
        let conn = &host.spec.redfish_connection;
        let mut config = BmcConfig::new(conn.address.clone(), secrets.credentials);
        config.tls = secrets.tls;
        config.system_path = conn.system_path.clone();
        config.policy = ctx.settings.redfish.clone();
        let client = RedfishClient::new(config).map_err(|e| Failure::from(&e))?;
        let key = format!(
            "{}|{}|{}",
            host.uid().unwrap_or_default(),
            conn.address,
            conn.system_path.as_deref().unwrap_or_default()
        );
        if let Some(d) = ctx.discovery(&key) {
            client.seed(d);
        }
        Ok(Self { ctx, client, key })
    }

    /// Runs one operation, counting it and its HTTP requests under `operation`. A failure
    /// forgets the cached discovery, so the next try starts from the service root.
    pub async fn run<T>(
        &self,
        operation: &str,
        op: impl Future<Output = Result<T, RedfishError>>,
    ) -> Result<T, RedfishError> {
        let before = self.client.requests_sent();
        let result = op.await;
        let sent = self.client.requests_sent() - before;
        match &result {
            Ok(_) => {
                self.ctx.metrics.redfish(operation, "success", sent);
                self.ctx
                    .remember_discovery(&self.key, self.client.discovery());
            }
            Err(e) => {
                self.ctx
                    .metrics
                    .redfish(operation, Failure::from(e).reason, sent);
                self.ctx.forget_discovery(&self.key);
            }
        }
        result
    }
}
