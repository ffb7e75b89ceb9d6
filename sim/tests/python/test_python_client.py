"""What a user of the official `kubernetes` Python client relies on, checked
against `beskar7-sim apiserver`. Each test states the behaviour of a real
Kubernetes apiserver that it expects."""

import copy
import json
import time
import uuid

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from conftest import WIDGET_GROUP, WIDGET_PLURAL, WIDGET_VERSION

# CoreV1Api.patch_* sends a dict body as a strategic merge patch by default;
# these tests ask for a JSON merge patch (RFC 7386) explicitly.
MERGE_PATCH = "application/merge-patch+json"


def status_of(exc: ApiException) -> dict:
    """The metav1.Status a failed request returned."""
    body = json.loads(exc.body)
    assert body.get("kind") == "Status", body
    return body


def configmap(name, data, labels=None):
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels), data=data
    )


def widget(name, spec=None, **metadata):
    return {
        "apiVersion": f"{WIDGET_GROUP}/{WIDGET_VERSION}",
        "kind": "Widget",
        "metadata": {"name": name, **metadata},
        "spec": spec if spec is not None else {"size": 1},
    }


def widgets(custom, method, namespace, *args, **kwargs):
    """Call CustomObjectsApi.<method> for widgets in `namespace`."""
    return getattr(custom, method)(WIDGET_GROUP, WIDGET_VERSION, namespace, WIDGET_PLURAL, *args, **kwargs)


# --- ConfigMap CRUD ---------------------------------------------------------


def test_configmap_crud(core, namespace):
    created = core.create_namespaced_config_map(
        namespace, configmap("settings", {"a": "1"}, {"app": "demo", "tier": "backend"})
    )
    assert created.metadata.name == "settings"
    assert created.metadata.namespace == namespace
    assert created.metadata.uid
    assert created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert created.data == {"a": "1"}
    core.create_namespaced_config_map(namespace, configmap("other", {"x": "y"}, {"app": "other"}))

    read = core.read_namespaced_config_map("settings", namespace)
    assert read.metadata.uid == created.metadata.uid
    assert read.metadata.resource_version == created.metadata.resource_version
    assert read.metadata.labels == {"app": "demo", "tier": "backend"}
    assert read.data == {"a": "1"}

    # A label selector narrows the list; without one both objects are listed.
    selected = core.list_namespaced_config_map(namespace, label_selector="app=demo")
    assert [cm.metadata.name for cm in selected.items] == ["settings"]
    assert selected.metadata.resource_version
    everything = core.list_namespaced_config_map(namespace)
    assert {"settings", "other"} <= {cm.metadata.name for cm in everything.items}

    read.data = {"a": "2", "b": "3"}
    replaced = core.replace_namespaced_config_map("settings", namespace, read)
    assert replaced.data == {"a": "2", "b": "3"}
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.resource_version != created.metadata.resource_version
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "2", "b": "3"}

    # Merge patch: null deletes a key, other keys are merged in.
    patched = core.patch_namespaced_config_map(
        "settings",
        namespace,
        {"data": {"b": None, "c": "4"}, "metadata": {"labels": {"tier": None}}},
        _content_type=MERGE_PATCH,
    )
    assert patched.data == {"a": "2", "c": "4"}
    assert patched.metadata.labels == {"app": "demo"}
    assert patched.metadata.resource_version != replaced.metadata.resource_version
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "2", "c": "4"}

    core.delete_namespaced_config_map("settings", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("settings", namespace)
    assert missing.value.status == 404
    # The other object is untouched by the delete.
    assert core.read_namespaced_config_map("other", namespace).data == {"x": "y"}


# --- Error statuses ---------------------------------------------------------


def test_read_missing_object_is_404_not_found(core, namespace):
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("does-not-exist", namespace)
    assert err.value.status == 404
    status = status_of(err.value)
    assert status["status"] == "Failure"
    assert status["reason"] == "NotFound"
    assert status["code"] == 404
    assert status["details"]["name"] == "does-not-exist"
    assert status["details"]["kind"] == "configmaps"


def test_duplicate_create_is_409_already_exists(core, namespace):
    core.create_namespaced_config_map(namespace, configmap("dup", {"v": "first"}))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, configmap("dup", {"v": "second"}))
    assert err.value.status == 409
    status = status_of(err.value)
    assert status["reason"] == "AlreadyExists"
    assert status["code"] == 409
    assert status["details"]["name"] == "dup"
    # The first object is kept as it was.
    assert core.read_namespaced_config_map("dup", namespace).data == {"v": "first"}


def test_replace_with_stale_resource_version_is_409_conflict(core, namespace):
    created = core.create_namespaced_config_map(namespace, configmap("cas", {"v": "1"}))
    stale = copy.deepcopy(created)
    created.data = {"v": "2"}
    core.replace_namespaced_config_map("cas", namespace, created)

    stale.data = {"v": "lost-update"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cas", namespace, stale)
    assert err.value.status == 409
    status = status_of(err.value)
    assert status["reason"] == "Conflict"
    assert status["code"] == 409
    assert core.read_namespaced_config_map("cas", namespace).data == {"v": "2"}


def test_replace_custom_object_without_resource_version_is_422_invalid(custom, widget_crd, namespace):
    # Custom resources do not allow unconditional updates: PUT must carry
    # metadata.resourceVersion.
    widgets(custom, "create_namespaced_custom_object", namespace, widget("norv", {"size": 1}))
    body = widgets(custom, "get_namespaced_custom_object", namespace, "norv")
    del body["metadata"]["resourceVersion"]
    body["spec"] = {"size": 2}

    with pytest.raises(ApiException) as err:
        widgets(custom, "replace_namespaced_custom_object", namespace, "norv", body)
    assert err.value.status == 422
    status = status_of(err.value)
    assert status["reason"] == "Invalid"
    assert status["code"] == 422
    assert "metadata.resourceVersion" in status["message"]
    assert widgets(custom, "get_namespaced_custom_object", namespace, "norv")["spec"] == {"size": 1}


def test_create_in_missing_namespace_is_404(core):
    missing = f"no-such-ns-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(missing, configmap("orphan", {"v": "1"}))
    assert err.value.status == 404
    status = status_of(err.value)
    assert status["reason"] == "NotFound"
    # The Status names the namespace, not the object, as the missing thing.
    assert status["details"]["kind"] == "namespaces"
    assert status["details"]["name"] == missing


# --- Resource versions and watch --------------------------------------------


def test_noop_replace_keeps_resource_version(core, namespace):
    created = core.create_namespaced_config_map(namespace, configmap("same", {"v": "1"}, {"app": "demo"}))
    current = core.read_namespaced_config_map("same", namespace)
    replaced = core.replace_namespaced_config_map("same", namespace, current)
    assert replaced.metadata.resource_version == created.metadata.resource_version
    assert core.read_namespaced_config_map("same", namespace).metadata.resource_version == created.metadata.resource_version


def test_watch_resumes_after_resource_version(core, namespace):
    created = core.create_namespaced_config_map(namespace, configmap("watched", {"v": "1"}))
    rv = created.metadata.resource_version

    created.data = {"v": "2"}
    second = core.replace_namespaced_config_map("watched", namespace, created)
    third = core.patch_namespaced_config_map(
        "watched", namespace, {"data": {"v": "3"}}, _content_type=MERGE_PATCH
    )

    started = time.monotonic()
    events = [
        (e["type"], e["object"].metadata.resource_version, e["object"].data)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=rv,
            timeout_seconds=2,
            # Client-side guard so a server that ignores timeoutSeconds fails instead of hanging.
            _request_timeout=15,
        )
        if e["object"].metadata.name == "watched"
    ]
    # Only the changes after `rv`, in order; not the ADDED that produced `rv`.
    assert events == [
        ("MODIFIED", second.metadata.resource_version, {"v": "2"}),
        ("MODIFIED", third.metadata.resource_version, {"v": "3"}),
    ]
    # The server ends the watch after timeoutSeconds.
    assert time.monotonic() - started < 10


# --- Custom resources: status subresource, generation, finalizers -----------


def test_status_subresource_ignores_spec_changes(custom, widget_crd, namespace):
    widgets(custom, "create_namespaced_custom_object", namespace, widget("st", {"size": 1}))

    patched = widgets(
        custom,
        "patch_namespaced_custom_object_status",
        namespace,
        "st",
        {"spec": {"size": 99}, "status": {"phase": "Ready"}},
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"] == {"size": 1}

    stored = widgets(custom, "get_namespaced_custom_object", namespace, "st")
    assert stored["status"] == {"phase": "Ready"}
    assert stored["spec"] == {"size": 1}


def test_main_endpoint_ignores_status_changes(custom, widget_crd, namespace):
    widgets(custom, "create_namespaced_custom_object", namespace, widget("main", {"size": 1}))
    widgets(custom, "patch_namespaced_custom_object_status", namespace, "main", {"status": {"phase": "Ready"}})

    patched = widgets(
        custom,
        "patch_namespaced_custom_object",
        namespace,
        "main",
        {"spec": {"size": 2}, "status": {"phase": "Hacked"}},
    )
    assert patched["spec"] == {"size": 2}
    assert patched["status"] == {"phase": "Ready"}

    stored = widgets(custom, "get_namespaced_custom_object", namespace, "main")
    assert stored["spec"] == {"size": 2}
    assert stored["status"] == {"phase": "Ready"}


def test_generation_follows_spec_not_status(custom, widget_crd, namespace):
    created = widgets(custom, "create_namespaced_custom_object", namespace, widget("gen", {"size": 1}))
    assert created["metadata"]["generation"] == 1

    status_write = widgets(
        custom, "patch_namespaced_custom_object_status", namespace, "gen", {"status": {"observed": 1}}
    )
    assert status_write["metadata"]["generation"] == 1
    # The status write is still a write: it gets a new resourceVersion.
    assert status_write["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]

    spec_write = widgets(custom, "patch_namespaced_custom_object", namespace, "gen", {"spec": {"size": 5}})
    assert spec_write["metadata"]["generation"] == 2
    assert widgets(custom, "get_namespaced_custom_object", namespace, "gen")["metadata"]["generation"] == 2


def test_finalizer_holds_deletion_until_removed(custom, widget_crd, namespace):
    widgets(
        custom,
        "create_namespaced_custom_object",
        namespace,
        widget("held", finalizers=["example.com/hold"]),
    )

    widgets(custom, "delete_namespaced_custom_object", namespace, "held")
    # Deletion is only marked while a finalizer remains.
    terminating = widgets(custom, "get_namespaced_custom_object", namespace, "held")
    assert terminating["metadata"].get("deletionTimestamp")
    assert terminating["metadata"]["finalizers"] == ["example.com/hold"]

    # Removing the last finalizer completes the deletion.
    widgets(
        custom,
        "patch_namespaced_custom_object",
        namespace,
        "held",
        {"metadata": {"finalizers": None}},
    )
    with pytest.raises(ApiException) as err:
        widgets(custom, "get_namespaced_custom_object", namespace, "held")
    assert err.value.status == 404
    assert status_of(err.value)["reason"] == "NotFound"


# --- CRD schemas ------------------------------------------------------------


@pytest.fixture(scope="session")
def gauge_crd(api_client):
    """gauges.example.com/v1: a typed schema with a default, a bound and a CEL rule."""
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gauges.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gauges", "singular": "gauge", "kind": "Gauge", "listKind": "GaugeList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {
                         "type": "object",
                         "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "min must not exceed max"}],
                         "properties": {"min": {"type": "integer", "minimum": 0, "default": 0},
                                        "max": {"type": "integer"}}}}}}}]},
    })
    deadline = time.monotonic() + 10
    while not any(c.type == "Established" and c.status == "True"
                  for c in (ext.read_custom_resource_definition("gauges.example.com").status.conditions or [])):
        assert time.monotonic() < deadline, "gauges.example.com not Established"
        time.sleep(0.1)
    return "gauges.example.com"


def gauges(custom, method, namespace, *args, **kwargs):
    return getattr(custom, method)("example.com", "v1", namespace, "gauges", *args, **kwargs)


def test_custom_objects_are_pruned_defaulted_and_validated(custom, gauge_crd, namespace):
    # A real server drops fields the schema does not declare and fills in defaults.
    created = gauges(custom, "create_namespaced_custom_object", namespace, {
        "apiVersion": "example.com/v1", "kind": "Gauge", "metadata": {"name": "g"},
        "spec": {"max": 5, "colour": "red"}})
    assert created["spec"] == {"min": 0, "max": 5}

    # OpenAPI and CEL violations come back together as one 422 with a cause each.
    with pytest.raises(ApiException) as err:
        gauges(custom, "create_namespaced_custom_object", namespace, {
            "apiVersion": "example.com/v1", "kind": "Gauge", "metadata": {"name": "bad"},
            "spec": {"min": -1, "max": -2}})
    assert err.value.status == 422
    causes = {(c["field"], c["message"]) for c in status_of(err.value)["details"]["causes"]}
    assert causes == {
        ("spec.min", "Invalid value: -1: spec.min in body should be greater than or equal to 0"),
        ("spec", 'Invalid value: "object": min must not exceed max'),
    }

    # fieldValidation=Strict turns the unknown field into a 400.
    with pytest.raises(ApiException) as err:
        gauges(custom, "create_namespaced_custom_object", namespace, {
            "apiVersion": "example.com/v1", "kind": "Gauge", "metadata": {"name": "strict"},
            "spec": {"max": 1, "colour": "red"}}, field_validation="Strict")
    assert err.value.status == 400
    assert 'strict decoding error: unknown field "spec.colour"' in status_of(err.value)["message"]
