//! Progress as the operator makes it: one line per state change of a PhysicalHost, a
//! Beskar7Machine or a Machine, read from watches (nothing is polled), and the time hosts spend
//! in each state for the summary.

use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A change of one object, as far as the demo shows it.
enum Seen {
    Host {
        name: String,
        state: String,
    },
    B7m {
        name: String,
        phase: String,
        detail: String,
    },
    Machine {
        name: String,
        provider_id: Option<String>,
    },
}

/// The host states the summary reports time for, in order.
const PHASES: [&str; 4] = ["Enrolling", "InUse", "Inspecting", "Deploying"];

pub struct Summary {
    pub provisioned: usize,
    pub elapsed: Duration,
    /// Mean time a host spent in each of [`PHASES`] (the ones any host went through).
    pub phases: Vec<(&'static str, Duration)>,
}

pub struct Progress {
    started: Instant,
    hosts: HashMap<String, (String, Instant)>,
    phases: BTreeMap<String, (Duration, u32)>,
    b7ms: HashMap<String, String>,
    provisioned: BTreeMap<String, String>,
}

fn stream(
    api: Api<DynamicObject>,
    f: fn(DynamicObject) -> Option<Seen>,
) -> Pin<Box<dyn Stream<Item = Seen> + Send>> {
    // Errors are retried by the back-off; there is nothing to show for them.
    watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .filter_map(move |o| std::future::ready(o.ok().and_then(f)))
        .boxed()
}

fn name(o: &DynamicObject) -> String {
    o.metadata.name.clone().unwrap_or_default()
}

impl Progress {
    pub fn new(started: Instant) -> Progress {
        Progress {
            started,
            hosts: HashMap::new(),
            phases: BTreeMap::new(),
            b7ms: HashMap::new(),
            provisioned: BTreeMap::new(),
        }
    }

    /// Prints changes until `want` Machines are provisioned (CAPI's view: a provider ID and
    /// `infrastructureProvisioned`, mirrored by the stand-in). Returns only then; the caller
    /// bounds it.
    pub async fn run(
        &mut self,
        hosts: Api<DynamicObject>,
        b7ms: Api<DynamicObject>,
        machines: Api<DynamicObject>,
        want: usize,
    ) -> Summary {
        let mut all = futures::stream::select_all([
            stream(hosts, |o| {
                let state = o.data["status"]["state"].as_str()?.to_owned();
                Some(Seen::Host {
                    name: name(&o),
                    state,
                })
            }),
            stream(b7ms, |o| {
                let phase = o.data["status"]["phase"].as_str()?.to_owned();
                let detail = if phase == "Failed" {
                    ready_message(&o)
                } else {
                    o.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("infrastructure.cluster.x-k8s.io/physicalhost"))
                        .map(|h| h.rsplit('/').next().unwrap_or(h).to_owned())
                        .unwrap_or_default()
                };
                Some(Seen::B7m {
                    name: name(&o),
                    phase,
                    detail,
                })
            }),
            stream(machines, |o| {
                let done = o.data["status"]["initialization"]["infrastructureProvisioned"] == true;
                Some(Seen::Machine {
                    name: name(&o),
                    provider_id: o.data["spec"]["providerID"]
                        .as_str()
                        .filter(|_| done)
                        .map(str::to_owned),
                })
            }),
        ]);
        while self.provisioned.len() < want {
            let Some(seen) = all.next().await else {
                // select_all of watchers never ends; be safe rather than spin.
                std::future::pending::<()>().await;
                continue;
            };
            self.apply(seen, want);
        }
        self.summary()
    }

    fn line(&self, text: std::fmt::Arguments) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{:>7.1}s  {text}",
            self.started.elapsed().as_secs_f64()
        );
        let _ = out.flush();
    }

    fn apply(&mut self, seen: Seen, want: usize) {
        let now = Instant::now();
        match seen {
            Seen::Host { name, state } => {
                let before = self.hosts.get(&name).map(|(s, since)| (s.clone(), *since));
                if before.as_ref().is_some_and(|(s, _)| *s == state) {
                    return;
                }
                let from = match before {
                    Some((s, since)) => {
                        let e = self.phases.entry(s.clone()).or_default();
                        e.0 += now - since;
                        e.1 += 1;
                        s
                    }
                    None => "·".to_owned(),
                };
                self.line(format_args!("host     {name:<14} {from} → {state}"));
                self.hosts.insert(name, (state, now));
            }
            Seen::B7m {
                name,
                phase,
                detail,
            } => {
                let before = self.b7ms.insert(name.clone(), phase.clone());
                if before.as_deref() == Some(phase.as_str()) {
                    return;
                }
                let from = before.unwrap_or_else(|| "·".to_owned());
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!("  ({detail})")
                };
                self.line(format_args!("machine  {name:<14} {from} → {phase}{detail}"));
            }
            Seen::Machine { name, provider_id } => {
                if let Some(id) = provider_id
                    && !self.provisioned.contains_key(&name)
                {
                    self.provisioned.insert(name.clone(), id.clone());
                    let n = self.provisioned.len();
                    self.line(format_args!(
                        "Machine  {name:<14} provisioned {n}/{want}  {id}"
                    ));
                }
            }
        }
    }

    fn summary(&self) -> Summary {
        let phases = PHASES
            .iter()
            .filter_map(|p| {
                let (total, n) = self.phases.get(*p)?;
                Some((*p, *total / (*n).max(1)))
            })
            .collect();
        Summary {
            provisioned: self.provisioned.len(),
            elapsed: self.started.elapsed(),
            phases,
        }
    }

    /// Which Machines are not provisioned yet and where their Beskar7Machines are: the reason
    /// given on a timeout.
    pub fn stuck(&self, machines: &[String]) -> String {
        let stuck: Vec<String> = machines
            .iter()
            .filter(|m| !self.provisioned.contains_key(*m))
            .map(|m| {
                format!(
                    "{m} ({})",
                    self.b7ms
                        .get(m)
                        .map(String::as_str)
                        .unwrap_or("no phase yet")
                )
            })
            .collect();
        stuck.join(", ")
    }
}

/// The Ready condition's message of a failed Beskar7Machine.
fn ready_message(o: &DynamicObject) -> String {
    o.data["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(group, version, kind),
        plural,
    )
}
