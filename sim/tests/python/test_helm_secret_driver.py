"""Helm 4 with its default storage driver (Secrets, written as protobuf) against
`beskar7-sim apiserver`: the release is recorded in `sh.helm.release.v1.<name>.v<N>` Secrets,
updated on upgrade and removed on uninstall, as on a real cluster.

helm-sdkpy's Go library reads HELM_DRIVER once, as the process starts, and a caller may have
set it; so Helm runs here in a subprocess whose environment has no HELM_DRIVER."""

import base64
import gzip
import json
import os
import subprocess
import sys

from test_helm import write_chart

# Runs one Helm action and prints the release as JSON. argv: kubeconfig namespace action chart
HELM_SCRIPT = """
import asyncio, json, sys
from helm_sdkpy import Configuration, Install, Uninstall, Upgrade

kubeconfig, namespace, action, chart = sys.argv[1:5]
config = Configuration(namespace=namespace, kubeconfig=kubeconfig)
if action == "install":
    result = Install(config).run("demo", chart, values={"greeting": "hi"}, wait=False, timeout=60)
elif action == "upgrade":
    result = Upgrade(config).run("demo", chart, values={"greeting": "bye"}, wait=False, timeout=60)
else:
    result = Uninstall(config).run("demo")
print(json.dumps(asyncio.run(result)))
"""


def helm(apiserver, namespace, action, chart):
    env = {k: v for k, v in os.environ.items() if k != "HELM_DRIVER"}
    done = subprocess.run(
        [sys.executable, "-c", HELM_SCRIPT, str(apiserver["kubeconfig"]), namespace, action, str(chart)],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, f"helm {action} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def release_secrets(core, namespace):
    found = core.list_namespaced_secret(namespace, label_selector="owner=helm,name=demo").items
    return {s.metadata.name: s for s in found}


def test_helm_keeps_its_release_in_secrets(apiserver, core, custom, widget_crd, namespace, tmp_path):
    chart = write_chart(tmp_path, "demo")

    release = helm(apiserver, namespace, "install", chart)
    assert release["info"]["status"] == "deployed"
    secrets = release_secrets(core, namespace)
    assert list(secrets) == ["sh.helm.release.v1.demo.v1"]
    secret = secrets["sh.helm.release.v1.demo.v1"]
    assert secret.type == "helm.sh/release.v1"
    assert secret.metadata.labels["status"] == "deployed"
    # The stored release is Helm's own record: base64(gzip(JSON)) inside the Secret's data.
    stored = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))
    assert stored["name"] == "demo"
    assert stored["config"] == {"greeting": "hi"}
    assert core.read_namespaced_config_map("demo-settings", namespace).data == {"greeting": "hi"}

    # Upgrade reads the release back from the Secret and writes v2 (PUTs in protobuf).
    release = helm(apiserver, namespace, "upgrade", chart)
    assert release["version"] == 2
    secrets = release_secrets(core, namespace)
    assert sorted(secrets) == ["sh.helm.release.v1.demo.v1", "sh.helm.release.v1.demo.v2"]
    assert secrets["sh.helm.release.v1.demo.v1"].metadata.labels["status"] == "superseded"
    assert secrets["sh.helm.release.v1.demo.v2"].metadata.labels["status"] == "deployed"
    assert core.read_namespaced_config_map("demo-settings", namespace).data == {"greeting": "bye"}

    # Uninstall deletes the release Secrets (DELETE with protobuf DeleteOptions).
    release = helm(apiserver, namespace, "uninstall", chart)
    assert release["release"]["info"]["status"] == "uninstalled"
    assert release_secrets(core, namespace) == {}
