//! One simulated server, whole: a BMC serving Redfish on loopback and the virtual host behind
//! it. What the demo starts N of.

use super::{Hardware, HostConfig, VirtualHost};
use crate::bmc::{Bmc, BmcConfig};
use std::sync::Arc;
use tokio::sync::oneshot;

pub struct SimServer {
    pub bmc: Arc<Bmc>,
    pub host: Arc<VirtualHost>,
    /// `http://127.0.0.1:PORT/redfish/v1/Systems/<id>`: what a PhysicalHost's `bmc.address`
    /// names.
    pub redfish_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl SimServer {
    /// Starts a BMC for `hardware` (the tree is generated from it, `bmc.server` is replaced) on
    /// 127.0.0.1 at a free port, and the virtual host behind it.
    pub async fn start(
        name: &str,
        hardware: Hardware,
        mut bmc: BmcConfig,
        host: HostConfig,
    ) -> Result<SimServer, String> {
        bmc.server = hardware.server_spec();
        bmc.mockup = None;
        let bmc = Bmc::new(bmc)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(bmc.clone().serve(listener, async {
            let _ = rx.await;
        }));
        let redfish_url = format!("http://127.0.0.1:{port}{}", bmc.system_path());
        let host = VirtualHost::start(name, hardware, host, bmc.clone());
        Ok(SimServer {
            bmc,
            host,
            redfish_url,
            shutdown: Some(tx),
        })
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.host.stop();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The MAC of server `index` in [`SimServer::start_many`]: `52:54:00:b7:HH:LL`.
pub fn mac_for(index: u32) -> String {
    format!(
        "52:54:00:b7:{:02x}:{:02x}",
        (index >> 8) & 0xff,
        index & 0xff
    )
}

impl SimServer {
    /// `count` servers named `<prefix>-<i>` (i from 1) with [`Hardware::standard`] and
    /// [`mac_for`] MACs, each with its own BMC on a free loopback port.
    pub async fn start_many(
        prefix: &str,
        count: u32,
        bmc: BmcConfig,
        host: HostConfig,
    ) -> Result<Vec<SimServer>, String> {
        let mut servers = Vec::with_capacity(count as usize);
        for i in 1..=count {
            let hardware = Hardware::standard(i, &mac_for(i));
            servers.push(
                SimServer::start(
                    &format!("{prefix}-{i}"),
                    hardware,
                    bmc.clone(),
                    host.clone(),
                )
                .await?,
            );
        }
        Ok(servers)
    }
}
