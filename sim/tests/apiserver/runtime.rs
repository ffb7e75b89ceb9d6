//! kube-runtime against the server: a Controller with a finalizer and status writes settles and
//! cleans up, and the event Recorder's events show through both Event APIs.

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Context {
    widgets: Api<Widget>,
    reconciles: AtomicUsize,
    cleanups: AtomicUsize,
}

type ReconcileError = kube::runtime::finalizer::Error<kube::Error>;

async fn reconcile(w: Arc<Widget>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    finalizer(&ctx.widgets, "example.com/cleanup", w, |event| async {
        match event {
            Finalizer::Apply(w) => {
                // The house style: server-side apply of the status, forced, one field manager.
                let status = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                    "status": {"ready": true, "message": format!("size {}", w.spec.size)}});
                ctx.widgets
                    .patch_status(
                        &w.name_any(),
                        &PatchParams::apply("widget-controller").force(),
                        &Patch::Apply(&status),
                    )
                    .await?;
                Ok(Action::await_change())
            }
            Finalizer::Cleanup(_) => {
                ctx.cleanups.fetch_add(1, Ordering::SeqCst);
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(_: Arc<Widget>, _: &ReconcileError, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

#[tokio::test]
async fn controller_with_finalizer_settles_and_cleans_up() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let ctx = Arc::new(Context {
        widgets: widgets.clone(),
        reconciles: AtomicUsize::new(0),
        cleanups: AtomicUsize::new(0),
    });
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    widgets
        .create(&PostParams::default(), &widget("w", 3))
        .await
        .unwrap();
    let ready = await_condition(widgets.clone(), "w", |w: Option<&Widget>| {
        w.and_then(|w| w.status.as_ref())
            .is_some_and(|s| s.message.as_deref() == Some("size 3"))
    });
    within("status written by the controller", ready)
        .await
        .unwrap();
    let w = widgets.get("w").await.unwrap();
    assert_eq!(w.finalizers(), ["example.com/cleanup"]);

    // Settled: the last status write changed nothing, so nothing wakes the controller again.
    // Wait until no reconcile happened for a whole second (a hot loop never gets there), then
    // check that it stays so.
    let quiet = Duration::from_secs(1);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut settled = ctx.reconciles.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(quiet).await;
        let now = ctx.reconciles.load(Ordering::SeqCst);
        if now == settled {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the controller keeps reconciling a settled object ({now} reconciles)"
        );
        settled = now;
    }
    tokio::time::sleep(quiet).await;
    assert_eq!(
        ctx.reconciles.load(Ordering::SeqCst),
        settled,
        "the controller keeps reconciling a settled object"
    );

    // A spec change is reconciled once more.
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    let updated = await_condition(widgets.clone(), "w", |w: Option<&Widget>| {
        w.and_then(|w| w.status.as_ref())
            .is_some_and(|s| s.message.as_deref() == Some("size 4"))
    });
    within("status after a spec change", updated).await.unwrap();

    widgets.delete("w", &Default::default()).await.unwrap();
    let uid = w.uid().unwrap();
    within(
        "deletion through the finalizer",
        await_condition(widgets.clone(), "w", conditions::is_deleted(&uid)),
    )
    .await
    .unwrap();
    assert_eq!(ctx.cleanups.load(Ordering::SeqCst), 1);
    running.abort();
}

#[tokio::test]
async fn recorder_events_show_through_the_core_event_api() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let w = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "widget-controller".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "PowerFailed".into(),
        note: Some("the BMC did not answer".into()),
        action: "PowerOn".into(),
        secondary: None,
    };
    recorder.publish(&event, &w.object_ref(&())).await.unwrap();
    // The same event again: the Recorder patches the series through events.k8s.io.
    recorder.publish(&event, &w.object_ref(&())).await.unwrap();

    // kubectl describe reads core/v1 Events by involvedObject.
    let recorder_client = client.clone();
    let core: Api<CoreEvent> = Api::default_namespaced(client);
    let lp = ListParams::default().fields("involvedObject.name=w,involvedObject.kind=Widget");
    let events = core.list(&lp).await.unwrap().items;
    let [e] = events.as_slice() else {
        panic!("expected one event, got {events:?}")
    };
    assert_eq!(e.reason.as_deref(), Some("PowerFailed"));
    assert_eq!(e.message.as_deref(), Some("the BMC did not answer"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reporting_component.as_deref(), Some("widget-controller"));
    assert_eq!(e.involved_object.uid, w.metadata.uid);
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));

    // Read back through events.k8s.io, the same event has that API's field names.
    let new_api: Api<k8s_openapi::api::events::v1::Event> =
        Api::default_namespaced(recorder_client);
    let events = new_api.list(&ListParams::default()).await.unwrap().items;
    let [e] = events.as_slice() else {
        panic!("expected one event, got {events:?}")
    };
    assert_eq!(e.note.as_deref(), Some("the BMC did not answer"));
    assert_eq!(
        e.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("w")
    );
    assert_eq!(e.reporting_controller.as_deref(), Some("widget-controller"));
}
