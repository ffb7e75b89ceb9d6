"""Fixtures for the Python-client conformance tests of `beskar7-sim apiserver`.

One server runs for the whole session, started on a free loopback port; each
test gets a fresh namespace. The binary is $BESKAR7_SIM, or
<repo>/target/debug/beskar7-sim when that is unset.
"""

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parents[3]
BINARY = Path(os.environ.get("BESKAR7_SIM", REPO / "target" / "debug" / "beskar7-sim"))
LISTENING = re.compile(r"^beskar7-sim apiserver listening on (http://127\.0\.0\.1:(\d+))$")
STARTUP_TIMEOUT_S = 30
# A hung server must fail the test, not the whole CI run.
TEST_TIMEOUT_S = 60

WIDGET_GROUP = "example.com"
WIDGET_VERSION = "v1"
WIDGET_PLURAL = "widgets"
WIDGET_CRD = f"{WIDGET_PLURAL}.{WIDGET_GROUP}"


@pytest.fixture(autouse=True)
def _test_timeout():
    """Fail any test that runs past TEST_TIMEOUT_S (e.g. a watch that never ends)."""

    def expired(signum, frame):
        raise TimeoutError(f"test ran longer than {TEST_TIMEOUT_S}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _read_stdout(stream, lines: "queue.Queue[str | None]"):
    # Drains stdout for the server's whole life so it can never block on a
    # full pipe; the first line is what the fixture waits for.
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory):
    """The running server: {"url": ..., "kubeconfig": Path}."""
    if not BINARY.is_file():
        pytest.fail(f"beskar7-sim binary not found at {BINARY} (build it, or set BESKAR7_SIM)")
    workdir = tmp_path_factory.mktemp("apiserver")
    kubeconfig = workdir / "admin.kubeconfig"
    stderr_path = workdir / "stderr.log"
    # stderr goes to a file: a pipe nobody reads would stall a chatty server.
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [str(BINARY), "apiserver", "--listen", "127.0.0.1:0", "--kubeconfig", str(kubeconfig)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_read_stdout, args=(proc.stdout, lines), daemon=True).start()

    def fail(why):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        pytest.fail(
            f"{why}\nexit code: {proc.returncode}\n"
            f"stderr:\n{stderr_path.read_text(errors='replace')}",
            pytrace=False,
        )

    first, timed_out = None, False
    try:
        first = lines.get(timeout=STARTUP_TIMEOUT_S)
    except queue.Empty:
        timed_out = True  # failed outside the except block, so no chained traceback
    if timed_out:
        fail(f"no 'listening on' line on stdout within {STARTUP_TIMEOUT_S}s")
    if first is None:
        fail("the server closed stdout (exited?) before printing 'listening on'")
    match = LISTENING.match(first)
    if not match:
        fail(f"unexpected first stdout line: {first!r}")
    url = match.group(1)
    if not kubeconfig.is_file():
        fail(f"the server said it was listening but wrote no kubeconfig at {kubeconfig}")

    yield {"url": url, "kubeconfig": kubeconfig}

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def api_client(apiserver):
    """An ApiClient loaded from the kubeconfig the server wrote."""
    servers = [c["cluster"]["server"] for c in yaml.safe_load(apiserver["kubeconfig"].read_text())["clusters"]]
    assert servers == [apiserver["url"]], "kubeconfig must point at the address the server printed"
    configuration = client.Configuration()
    # Never route through a proxy from the environment: only 127.0.0.1 is contacted.
    configuration.proxy = None
    api = config.new_client_from_config(
        config_file=str(apiserver["kubeconfig"]), client_configuration=configuration
    )
    assert api.configuration.host == apiserver["url"]
    yield api
    api.close()


@pytest.fixture(scope="session")
def core(api_client):
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client):
    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="session")
def widget_crd(api_client):
    """The namespaced CRD widgets.example.com/v1 (kind Widget, status subresource), Established."""
    ext = client.ApiextensionsV1Api(api_client)
    open_object = client.V1JSONSchemaProps(type="object", x_kubernetes_preserve_unknown_fields=True)
    crd = client.V1CustomResourceDefinition(
        api_version="apiextensions.k8s.io/v1",
        kind="CustomResourceDefinition",
        metadata=client.V1ObjectMeta(name=WIDGET_CRD),
        spec=client.V1CustomResourceDefinitionSpec(
            group=WIDGET_GROUP,
            scope="Namespaced",
            names=client.V1CustomResourceDefinitionNames(
                plural=WIDGET_PLURAL, singular="widget", kind="Widget", list_kind="WidgetList"
            ),
            versions=[
                client.V1CustomResourceDefinitionVersion(
                    name=WIDGET_VERSION,
                    served=True,
                    storage=True,
                    subresources=client.V1CustomResourceSubresources(status={}),
                    schema=client.V1CustomResourceValidation(
                        open_apiv3_schema=client.V1JSONSchemaProps(
                            type="object",
                            properties={"spec": open_object, "status": open_object},
                        )
                    ),
                )
            ],
        ),
    )
    ext.create_custom_resource_definition(crd)

    # Clients must not use a CRD before it is Established.
    deadline = time.monotonic() + 10
    while True:
        got = ext.read_custom_resource_definition(WIDGET_CRD)
        conditions = (got.status and got.status.conditions) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"CRD {WIDGET_CRD} not Established within 10s; conditions: {conditions}")
        time.sleep(0.1)
    return WIDGET_CRD


@pytest.fixture
def namespace(core):
    """A fresh namespace for one test, deleted afterwards."""
    name = f"py-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise
