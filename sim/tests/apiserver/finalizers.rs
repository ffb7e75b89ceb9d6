//! The finalizer deletion flow, driven partly by kube-runtime's own `finalizer()` helper.

use crate::support::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, WatchEvent, WatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use serde_json::json;
use std::sync::Arc;

const FINALIZER: &str = "example.com/cleanup";

#[tokio::test]
async fn kube_runtime_finalizer_helper_adds_and_removes_its_finalizer() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();

    // First reconcile: the helper adds its finalizer with a JSON Patch whose `test` of
    // /metadata/finalizers against null must pass on a missing path, as on the real server.
    let w = Arc::new(widgets.get("w").await.unwrap());
    finalizer(&widgets, FINALIZER, w, |_| async {
        Ok::<_, std::convert::Infallible>(Action::await_change())
    })
    .await
    .expect("finalizer added");
    let w = widgets.get("w").await.unwrap();
    assert_eq!(
        w.metadata.finalizers.as_deref(),
        Some(&[FINALIZER.to_string()][..])
    );

    let deleting = widgets
        .delete("w", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("held by the finalizer");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(
        deleting.metadata.generation,
        Some(2),
        "deletion start bumps the generation"
    );

    // Cleanup: the helper removes its finalizer (test + remove by index); the object goes.
    let cleaned = std::sync::atomic::AtomicBool::new(false);
    let deleting = Arc::new(widgets.get("w").await.unwrap());
    finalizer(&widgets, FINALIZER, deleting, |event| {
        if let Event::Cleanup(_) = event {
            cleaned.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        async { Ok::<_, std::convert::Infallible>(Action::await_change()) }
    })
    .await
    .expect("finalizer removed");
    assert!(cleaned.into_inner());
    assert!(widgets.get_opt("w").await.unwrap().is_none());
}

#[tokio::test]
async fn deletion_with_finalizers_waits_for_the_last_one() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let mut w = widget("w", 1);
    w.metadata.finalizers = Some(vec!["a/one".into(), "b/two".into()]);
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    let start_rv = created.metadata.resource_version.clone().unwrap();

    let deleting = widgets
        .delete("w", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(0));
    let again = widgets
        .delete("w", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        again.metadata.resource_version, deleting.metadata.resource_version,
        "deleting twice changes nothing"
    );

    // No new finalizers once deletion started.
    let add = json!({"metadata": {"finalizers": ["a/one", "b/two", "c/three"]}});
    let err = api_error(
        widgets
            .patch("w", &PatchParams::default(), &Patch::Merge(&add))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let cause = &err.details.unwrap().causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("metadata.finalizers", "FieldValueForbidden")
    );

    // Other changes are still allowed while deleting.
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    let one_left = json!({"metadata": {"finalizers": ["b/two"]}});
    let still = widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&one_left))
        .await
        .unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    let last = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(
        widgets.get_opt("w").await.unwrap().is_none(),
        "gone when the last finalizer goes"
    );

    // The watch history ends with a DELETED event carrying a new resourceVersion.
    let wp = WatchParams::default().timeout(1).disable_bookmarks();
    let events: Vec<WatchEvent<Widget>> = within(
        "watch",
        widgets.watch(&wp, &start_rv).await.unwrap().try_collect(),
    )
    .await
    .unwrap();
    let Some(WatchEvent::Deleted(gone)) = events.last() else {
        panic!("last event is not DELETED: {events:?}")
    };
    assert!(rv(&gone.metadata) > rv(&still.metadata));
    assert_eq!(
        gone.metadata.resource_version,
        last.metadata.resource_version
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let w = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let err = api_error(widgets.delete("w", &wrong_uid).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the UID in the precondition (other)"),
        "{}",
        err.message
    );
    let wrong_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..Default::default()
    };
    assert_eq!(api_error(widgets.delete("w", &wrong_rv).await).code, 409);
    assert!(
        widgets.get_opt("w").await.unwrap().is_some(),
        "a failed precondition deletes nothing"
    );
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: w.metadata.uid.clone(),
            resource_version: w.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    widgets.delete("w", &right).await.unwrap();
    assert!(widgets.get_opt("w").await.unwrap().is_none());
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let (_server, client) = server();
    install_widgets(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would_be = widgets.create(&dry, &widget("w", 1)).await.unwrap();
    assert_eq!(would_be.metadata.name.as_deref(), Some("w"));
    assert!(widgets.get_opt("w").await.unwrap().is_none());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    widgets
        .delete(
            "w",
            &DeleteParams {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(widgets.get_opt("w").await.unwrap().is_some());
    let mut watch = widgets
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        within("initial event", watch.next()).await,
        Some(Ok(WatchEvent::Added(_)))
    ));
}
