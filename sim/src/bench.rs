//! `beskar7-sim bench-apiserver`: how the in-memory API server holds up with many objects and
//! many watchers, measured over real loopback HTTP with the real kube client.
//!
//! Phases: create N ConfigMaps (C at a time); list them whole and in pages of 500; start W
//! watchers from the list's resourceVersion; update every object once and measure, per delivered
//! event, the time from just before the write to its arrival at each watcher (fan-out latency).
//! Client and server share the process (and its cores), as in the integration tests.

use crate::apiserver::{ApiServer, Config, Tunables};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde::Serialize;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub objects: usize,
    pub watchers: usize,
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub objects: usize,
    pub watchers: usize,
    pub concurrency: usize,
    pub object_bytes: usize,
    pub create_seconds: f64,
    pub creates_per_second: f64,
    pub create_latency: Latency,
    pub list_all_ms: f64,
    pub list_paged_ms: f64,
    pub list_pages: usize,
    pub update_seconds: f64,
    pub events_delivered: usize,
    pub events_per_second: f64,
    pub fanout_latency: Latency,
    pub peak_rss_mb: f64,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Latency {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// A ConfigMap of about 1 KiB: the size of a typical operator object.
fn object(i: usize) -> ConfigMap {
    let filler = "x".repeat(900);
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("bench-{i:05}")),
            labels: Some([("bench".to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        data: Some(
            [
                ("t".to_string(), "0".to_string()),
                ("filler".to_string(), filler),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn run(cfg: BenchConfig) -> Result<BenchReport, String> {
    let BenchConfig {
        objects,
        watchers,
        concurrency,
    } = cfg.clone();
    if objects == 0 || concurrency == 0 {
        return Err("--objects and --concurrency must be at least 1".into());
    }
    // Keep every update in the watch history, so no watcher can fall behind into a 410.
    let tunables = Tunables {
        watch_history: objects * 2 + 100,
        ..Tunables::default()
    };
    let server = ApiServer::new(Config {
        tunables,
        ..Config::default()
    })
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    let url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    tokio::spawn(server.serve(listener, std::future::pending()));
    let config = kube::Config::new(url.parse().map_err(|e| format!("bad URL {url}: {e}"))?);
    let client =
        kube::Client::try_from(config).map_err(|e| format!("cannot build a client: {e}"))?;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let object_bytes = serde_json::to_vec(&object(0))
        .map_err(|e| e.to_string())?
        .len();

    let started = Instant::now();
    let create_latencies: Vec<Duration> = futures::stream::iter(0..objects)
        .map(|i| {
            let cms = cms.clone();
            async move {
                let t = Instant::now();
                cms.create(&PostParams::default(), &object(i))
                    .await
                    .map(|_| t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
        .map_err(|e| format!("create failed: {e}"))?;
    let create_seconds = started.elapsed().as_secs_f64();

    let t = Instant::now();
    let all = cms
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list failed: {e}"))?;
    let list_all_ms = t.elapsed().as_secs_f64() * 1000.0;
    if all.items.len() != objects {
        return Err(format!(
            "listed {} objects, created {objects}",
            all.items.len()
        ));
    }
    let t = Instant::now();
    let (mut pages, mut token, mut paged) = (0, None::<String>, 0);
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms
            .list(&lp)
            .await
            .map_err(|e| format!("paged list failed: {e}"))?;
        pages += 1;
        paged += page.items.len();
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        if token.is_none() {
            break;
        }
    }
    let list_paged_ms = t.elapsed().as_secs_f64() * 1000.0;
    if paged != objects {
        return Err(format!("paged through {paged} objects, created {objects}"));
    }

    // Watchers start from the list's resourceVersion and each expect one event per object.
    let rv = all.metadata.resource_version.unwrap_or_default();
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let (cms, rv) = (cms.clone(), rv.clone());
        tasks.push(tokio::spawn(async move {
            let wp = WatchParams::default().timeout(3600).disable_bookmarks();
            let mut stream = cms
                .watch(&wp, &rv)
                .await
                .map_err(|e| format!("watch failed: {e}"))?
                .boxed();
            let mut samples = Vec::with_capacity(objects);
            while samples.len() < objects {
                match stream
                    .try_next()
                    .await
                    .map_err(|e| format!("watch stream failed: {e}"))?
                {
                    Some(WatchEvent::Modified(cm)) => {
                        let sent: u64 = cm
                            .data
                            .as_ref()
                            .and_then(|d| d.get("t"))
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0);
                        let now = epoch.elapsed().as_micros() as u64;
                        samples.push(Duration::from_micros(now.saturating_sub(sent)));
                    }
                    Some(WatchEvent::Error(e)) => {
                        return Err(format!("watch error: {}", e.message));
                    }
                    Some(_) => {}
                    None => return Err("a watch ended early".to_string()),
                }
            }
            Ok::<_, String>(samples)
        }));
    }

    let t = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let cms = cms.clone();
            async move {
                let sent = epoch.elapsed().as_micros().to_string();
                let patch = json!({"data": {"t": sent}});
                cms.patch(
                    &format!("bench-{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map(drop)
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| format!("update failed: {e}"))?;
    let mut fanout = Vec::with_capacity(objects * watchers);
    for task in tasks {
        fanout.extend(
            task.await
                .map_err(|e| format!("watcher task failed: {e}"))??,
        );
    }
    let update_seconds = t.elapsed().as_secs_f64();
    let events_delivered = fanout.len();

    Ok(BenchReport {
        objects,
        watchers,
        concurrency,
        object_bytes,
        create_seconds,
        creates_per_second: objects as f64 / create_seconds,
        create_latency: latency(create_latencies),
        list_all_ms,
        list_paged_ms,
        list_pages: pages,
        update_seconds,
        events_delivered,
        events_per_second: events_delivered as f64 / update_seconds,
        fanout_latency: latency(fanout),
        peak_rss_mb: peak_rss_mb(),
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = |l: &Latency| {
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                l.p50_ms, l.p99_ms, l.max_ms
            )
        };
        writeln!(
            f,
            "objects {} (~{} B each), watchers {}, client concurrency {}",
            self.objects, self.object_bytes, self.watchers, self.concurrency
        )?;
        writeln!(
            f,
            "create   {:.2} s, {:.0}/s, {}",
            self.create_seconds,
            self.creates_per_second,
            l(&self.create_latency)
        )?;
        writeln!(
            f,
            "list     all at once {:.1} ms; {} pages of 500 {:.1} ms",
            self.list_all_ms, self.list_pages, self.list_paged_ms
        )?;
        writeln!(
            f,
            "fan-out  {} updates -> {} events in {:.2} s ({:.0} events/s), write-to-delivery {}",
            self.objects,
            self.events_delivered,
            self.update_seconds,
            self.events_per_second,
            l(&self.fanout_latency)
        )?;
        write!(
            f,
            "memory   peak RSS {:.1} MB (server and clients in one process)",
            self.peak_rss_mb
        )
    }
}
