//! The Redfish resource tree a simulated BMC serves: generated for a persona, or loaded from a
//! real vendor mockup (short form, paths relative to `/redfish/v1`).

use super::persona::Quirks;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// What the generated tree describes; a mockup brings its own.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub serial: String,
    pub uuid: String,
    pub macs: Vec<String>,
    pub cpu_sockets: u32,
    pub cpu_cores: u32,
    pub memory_gib: u32,
    pub powered_on: bool,
    /// `UEFI` or `Legacy`: what the server boots by default.
    pub boot_mode: String,
}

impl Default for ServerSpec {
    fn default() -> Self {
        ServerSpec {
            serial: "SIM0000001".into(),
            uuid: "2d1f7a4e-6c3b-4f0a-9d51-000000000001".into(),
            macs: vec!["52:54:00:00:00:01".into()],
            cpu_sockets: 2,
            cpu_cores: 32,
            memory_gib: 256,
            powered_on: false,
            boot_mode: "UEFI".into(),
        }
    }
}

/// Resources by `@odata.id`, without a trailing slash.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub resources: BTreeMap<String, Value>,
}

pub const ROOT: &str = "/redfish/v1";

/// `/redfish/v1/` and `/redfish/v1` are the same resource; so is a target with a trailing slash.
pub fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    }
}

impl Tree {
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.resources.get(&normalize(path))
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut Value> {
        self.resources.get_mut(&normalize(path))
    }

    fn insert(&mut self, value: Value) {
        let id = value["@odata.id"]
            .as_str()
            .expect("every resource has an @odata.id")
            .to_string();
        self.resources.insert(normalize(&id), value);
    }

    /// The first (and usually only) member of the Systems collection.
    pub fn system_path(&self) -> Option<String> {
        let systems = self.get(ROOT)?.pointer("/Systems/@odata.id")?.as_str()?;
        let member = self
            .get(systems)?
            .pointer("/Members/0/@odata.id")?
            .as_str()?;
        Some(normalize(member))
    }

    /// Where sessions are created: `Links.Sessions`, else `SessionService.Sessions`.
    pub fn sessions_path(&self) -> String {
        let root = self.get(ROOT);
        root.and_then(|r| r.pointer("/Links/Sessions/@odata.id"))
            .and_then(Value::as_str)
            .map(normalize)
            .or_else(|| {
                let service = root?.pointer("/SessionService/@odata.id")?.as_str()?;
                Some(normalize(
                    self.get(service)?
                        .pointer("/Sessions/@odata.id")?
                        .as_str()?,
                ))
            })
            .unwrap_or_else(|| format!("{ROOT}/SessionService/Sessions"))
    }

    /// Builds a tree for a persona: service root, one System, its NICs, sessions, a Manager.
    pub fn generate(quirks: &Quirks, spec: &ServerSpec) -> Tree {
        let mut tree = Tree::default();
        let system = format!("{ROOT}/Systems/{}", quirks.system_id);
        tree.insert(json!({
            "@odata.id": ROOT, "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
            "Id": "RootService", "Name": "Root Service", "RedfishVersion": "1.6.0",
            "Vendor": quirks.vendor, "UUID": spec.uuid,
            "Systems": {"@odata.id": format!("{ROOT}/Systems")},
            "Managers": {"@odata.id": format!("{ROOT}/Managers")},
            "SessionService": {"@odata.id": format!("{ROOT}/SessionService")},
            "Links": {"Sessions": {"@odata.id": format!("{ROOT}/SessionService/Sessions")}},
        }));
        tree.insert(json!({
            "@odata.id": format!("{ROOT}/Systems"), "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
            "Name": "Computer System Collection",
            "Members": [{"@odata.id": system}], "Members@odata.count": 1,
        }));
        let mut reset = json!({"target": format!("{system}/Actions/ComputerSystem.Reset")});
        let reset_types = json!([
            "On",
            "ForceOff",
            "GracefulShutdown",
            "GracefulRestart",
            "ForceRestart",
            "PowerCycle",
            "Nmi"
        ]);
        if quirks.reset_types_inline {
            reset["ResetType@Redfish.AllowableValues"] = reset_types.clone();
        } else {
            let info = format!("{system}/ResetActionInfo");
            reset["@Redfish.ActionInfo"] = json!(info);
            tree.insert(json!({
                "@odata.id": info, "@odata.type": "#ActionInfo.v1_1_2.ActionInfo", "Id": "ResetActionInfo",
                "Name": "Reset Action Info",
                "Parameters": [{"Name": "ResetType", "Required": true, "DataType": "String", "AllowableValues": reset_types}],
            }));
        }
        let mut sys = json!({
            "@odata.id": system, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
            "Id": quirks.system_id, "Name": "System", "SystemType": "Physical",
            "SerialNumber": spec.serial, "UUID": spec.uuid,
            "PowerState": if spec.powered_on { "On" } else { "Off" },
            "Status": {"State": "Enabled", "Health": "OK"},
            "ProcessorSummary": {"Count": spec.cpu_sockets, "CoreCount": spec.cpu_cores, "Model": "Simulated CPU",
                                 "Status": {"State": "Enabled", "Health": "OK"}},
            "MemorySummary": {"TotalSystemMemoryGiB": spec.memory_gib, "Status": {"State": "Enabled", "Health": "OK"}},
            "Boot": {
                "BootSourceOverrideEnabled": "Disabled",
                "BootSourceOverrideEnabled@Redfish.AllowableValues": quirks.override_enabled_values,
                "BootSourceOverrideTarget": "None",
                "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd", "Cd", "Usb", "BiosSetup", "UefiHttp"],
                "BootSourceOverrideMode": spec.boot_mode,
                "BootSourceOverrideMode@Redfish.AllowableValues": ["UEFI", "Legacy"],
            },
            "Actions": {"#ComputerSystem.Reset": reset},
        });
        if let Some(m) = quirks.manufacturer {
            sys["Manufacturer"] = json!(m);
        }
        if let Some(m) = quirks.model {
            sys["Model"] = json!(m);
        }
        if quirks.host_nics {
            let nics = format!("{system}/EthernetInterfaces");
            sys["EthernetInterfaces"] = json!({"@odata.id": nics});
            let members: Vec<Value> = (1..=spec.macs.len())
                .map(|i| json!({"@odata.id": format!("{nics}/{i}")}))
                .collect();
            tree.insert(json!({
                "@odata.id": nics, "@odata.type": "#EthernetInterfaceCollection.EthernetInterfaceCollection",
                "Name": "Ethernet Interfaces", "Members@odata.count": members.len(), "Members": members,
            }));
            for (i, mac) in spec.macs.iter().enumerate() {
                tree.insert(json!({
                    "@odata.id": format!("{nics}/{}", i + 1), "@odata.type": "#EthernetInterface.v1_6_0.EthernetInterface",
                    "Id": (i + 1).to_string(), "Name": format!("NIC {}", i + 1),
                    "MACAddress": mac, "PermanentMACAddress": mac, "LinkStatus": "LinkUp",
                    "Status": {"State": "Enabled", "Health": "OK"},
                }));
            }
        }
        tree.insert(sys);
        tree.insert(json!({
            "@odata.id": format!("{ROOT}/SessionService"), "@odata.type": "#SessionService.v1_1_8.SessionService",
            "Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true, "SessionTimeout": 1800,
            "Sessions": {"@odata.id": format!("{ROOT}/SessionService/Sessions")},
        }));
        tree.insert(json!({
            "@odata.id": format!("{ROOT}/Managers"), "@odata.type": "#ManagerCollection.ManagerCollection",
            "Name": "Manager Collection", "Members": [{"@odata.id": format!("{ROOT}/Managers/1")}], "Members@odata.count": 1,
        }));
        tree.insert(json!({
            "@odata.id": format!("{ROOT}/Managers/1"), "@odata.type": "#Manager.v1_10_0.Manager",
            "Id": "1", "Name": "Manager", "ManagerType": "BMC", "FirmwareVersion": "1.0.0-sim",
        }));
        tree
    }

    /// Loads a short-form mockup tree: every `index.json` below `dir` is the resource at
    /// `/redfish/v1/<its directory>`.
    pub fn load_mockup(dir: &Path) -> Result<Tree, String> {
        let mut tree = Tree::default();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            let entries = std::fs::read_dir(&current)
                .map_err(|e| format!("cannot read mockup {}: {e}", current.display()))?;
            for entry in entries {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.file_name().is_some_and(|n| n == "index.json") {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    let value: Value = serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
                    let relative = path
                        .parent()
                        .and_then(|p| p.strip_prefix(dir).ok())
                        .map(|p| p.to_string_lossy().into_owned());
                    let id = match relative.as_deref() {
                        None | Some("") => ROOT.to_string(),
                        Some(r) => format!("{ROOT}/{r}"),
                    };
                    tree.resources.insert(normalize(&id), value);
                }
            }
        }
        if tree.get(ROOT).is_none() {
            return Err(format!(
                "{} has no index.json at its top: not a short-form Redfish mockup",
                dir.display()
            ));
        }
        if tree.system_path().is_none() {
            return Err(format!(
                "{}: the mockup's Systems collection has no member",
                dir.display()
            ));
        }
        Ok(tree)
    }
}
