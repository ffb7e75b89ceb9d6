//! Watches: resumption, bookmarks, timeouts, 410 inside the stream, selector transitions and
//! streaming lists, through kube's raw watch and kube-runtime's watcher.

use crate::support::*;
use beskar7_sim::apiserver::Tunables;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

fn kinds(events: &[WatchEvent<Widget>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(w) => {
                format!("ADDED {}", w.metadata.name.as_deref().unwrap_or_default())
            }
            WatchEvent::Modified(w) => format!(
                "MODIFIED {}",
                w.metadata.name.as_deref().unwrap_or_default()
            ),
            WatchEvent::Deleted(w) => {
                format!("DELETED {}", w.metadata.name.as_deref().unwrap_or_default())
            }
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            WatchEvent::Error(e) => format!("ERROR {}", e.code),
        })
        .collect()
}

async fn collect(widgets: &Api<Widget>, wp: &WatchParams, rv: &str) -> Vec<WatchEvent<Widget>> {
    within(
        "watch stream",
        widgets.watch(wp, rv).await.unwrap().try_collect(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn watch_resumes_exactly_after_a_resource_version() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let a = widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    widgets
        .create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    widgets.delete("a", &Default::default()).await.unwrap();

    let wp = WatchParams::default().timeout(1).disable_bookmarks();
    let from_a = collect(
        &widgets,
        &wp,
        a.metadata.resource_version.as_deref().unwrap(),
    )
    .await;
    assert_eq!(kinds(&from_a), ["MODIFIED a", "ADDED b", "DELETED a"]);
    // From "0": the current state as synthetic ADDED events.
    assert_eq!(kinds(&collect(&widgets, &wp, "0").await), ["ADDED b"]);
}

#[tokio::test]
async fn watch_times_out_with_a_final_bookmark_carrying_kind_and_api_version() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let w = widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let events = collect(
        &widgets,
        &WatchParams::default().timeout(1),
        w.metadata.resource_version.as_deref().unwrap(),
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the stream ends at timeoutSeconds"
    );
    // kube decodes a BOOKMARK only when it has kind and apiVersion.
    let Some(WatchEvent::Bookmark(b)) = events.last() else {
        panic!("no final bookmark: {:?}", kinds(&events))
    };
    assert_eq!(
        (b.types.kind.as_str(), b.types.api_version.as_str()),
        ("Widget", "example.com/v1")
    );
    assert!(b.metadata.resource_version.parse::<u64>().unwrap() >= rv(&w.metadata));
}

#[tokio::test]
async fn idle_watches_get_periodic_bookmarks() {
    let tunables = Tunables {
        bookmark_interval: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let (_server, client) = server_with(tunables);
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let mut stream = widgets
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .unwrap()
        .boxed();
    let first = within("bookmark", stream.next()).await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Bookmark(_)),
        "{:?}",
        kinds(&[first])
    );
}

#[tokio::test]
async fn too_old_resource_version_is_an_expired_error_event_in_a_200_stream() {
    let (_server, client) = server_with(Tunables {
        watch_history: 2,
        ..Default::default()
    });
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let first = widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    for size in 2..6 {
        widgets
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": size}})),
            )
            .await
            .unwrap();
    }
    // The request itself succeeds; the 410 arrives as the stream's only event.
    let events = collect(
        &widgets,
        &WatchParams::default().timeout(5),
        first.metadata.resource_version.as_deref().unwrap(),
    )
    .await;
    let [WatchEvent::Error(status)] = events.as_slice() else {
        panic!("{:?}", kinds(&events))
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
    assert!(
        status.message.starts_with("too old resource version"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn kube_watcher_relists_after_falling_behind_the_history() {
    let (_server, client) = server_with(Tunables {
        watch_history: 3,
        ..Default::default()
    });
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let mut stream = watcher::watcher(widgets.clone(), watcher::Config::default()).boxed();
    let mut inits = 0;
    loop {
        match within("initial list", stream.next())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Init => inits += 1,
            Event::InitDone => break,
            _ => {}
        }
    }
    // While the watcher is not being read, more changes happen than the history keeps.
    for size in 2..=10 {
        widgets
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": size}})),
            )
            .await
            .unwrap();
    }
    let (mut latest, mut expired) = (0, 0);
    while latest != 10 {
        match within("relist after 410", stream.next()).await.unwrap() {
            Ok(Event::Init) => inits += 1,
            Ok(Event::InitApply(w) | Event::Apply(w)) => latest = w.spec.size,
            Ok(_) => {}
            // The watcher surfaces the 410 it got inside the stream, then relists.
            Err(watcher::Error::WatchError(status)) if status.code == 410 => expired += 1,
            Err(e) => panic!("watcher error: {e}"),
        }
    }
    assert_eq!(
        (expired, inits),
        (1, 2),
        "one 410, and the watcher relisted once"
    );
}

#[tokio::test]
async fn objects_entering_and_leaving_a_selector_are_added_and_deleted() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let start = widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    let label = |v: Option<&str>| Patch::Merge(json!({"metadata": {"labels": {"pool": v}}}));
    widgets
        .patch("a", &PatchParams::default(), &label(Some("free")))
        .await
        .unwrap();
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    widgets
        .patch("a", &PatchParams::default(), &label(Some("claimed")))
        .await
        .unwrap();
    widgets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}})),
        )
        .await
        .unwrap();
    let wp = WatchParams::default()
        .labels("pool=free")
        .timeout(1)
        .disable_bookmarks();
    let events = collect(
        &widgets,
        &wp,
        start.metadata.resource_version.as_deref().unwrap(),
    )
    .await;
    assert_eq!(kinds(&events), ["ADDED a", "MODIFIED a", "DELETED a"]);
    let by_name = WatchParams::default()
        .fields("metadata.name=a")
        .timeout(1)
        .disable_bookmarks();
    assert_eq!(
        collect(
            &widgets,
            &by_name,
            start.metadata.resource_version.as_deref().unwrap()
        )
        .await
        .len(),
        4
    );
}

#[tokio::test]
async fn streaming_lists_send_initial_events_then_a_marked_bookmark() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    for name in ["a", "b"] {
        widgets
            .create(&PostParams::default(), &widget(name, 1))
            .await
            .unwrap();
    }
    let mut stream = watcher::watcher(
        widgets.clone(),
        watcher::Config::default().streaming_lists(),
    )
    .boxed();
    let mut initial = Vec::new();
    loop {
        match within("streaming list", stream.next())
            .await
            .unwrap()
            .unwrap()
        {
            Event::InitApply(w) => initial.push(w.metadata.name.unwrap()),
            Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["a", "b"]);
    widgets
        .create(&PostParams::default(), &widget("c", 1))
        .await
        .unwrap();
    match within("live event", stream.next()).await.unwrap().unwrap() {
        Event::Apply(w) => assert_eq!(w.metadata.name.as_deref(), Some("c")),
        other => panic!("expected Apply(c), got {other:?}"),
    }
}

#[tokio::test]
async fn namespaced_watches_see_only_their_namespace() {
    let (_server, client) = server();
    install_widgets(&client).await;
    create_namespace(&client, "other").await;
    let here: Api<Widget> = Api::default_namespaced(client.clone());
    let there: Api<Widget> = Api::namespaced(client.clone(), "other");
    here.create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    there
        .create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    let wp = WatchParams::default().timeout(1).disable_bookmarks();
    assert_eq!(kinds(&collect(&here, &wp, "1").await), ["ADDED a"]);
    let all: Api<Widget> = Api::all(client);
    assert_eq!(
        kinds(&collect(&all, &wp, "1").await),
        ["ADDED a", "ADDED b"]
    );
}
