"""Helm 4 (through helm-sdkpy) installs a chart against `beskar7-sim apiserver` and its
objects exist afterwards, as on a real cluster. Helm's storage driver is whatever HELM_DRIVER
says (`make test-python` sets memory); test_helm_secret_driver.py covers the default Secret
driver."""

import asyncio
import textwrap

import pytest
from helm_sdkpy import Configuration, Install

from conftest import WIDGET_GROUP, WIDGET_PLURAL, WIDGET_VERSION


def write_chart(root, name):
    """A chart with a ConfigMap and a Widget custom resource, both taking values."""
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\nsize: 1\n")
    (chart / "templates" / "objects.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-settings
            data:
              greeting: {{ .Values.greeting | quote }}
            ---
            apiVersion: example.com/v1
            kind: Widget
            metadata:
              name: {{ .Release.Name }}-widget
            spec:
              size: {{ .Values.size }}
            """
        )
    )
    return chart


@pytest.mark.parametrize("server_side_apply", [False, True], ids=["client-side", "server-side-apply"])
def test_helm_install_creates_the_charts_objects(
    apiserver, core, custom, widget_crd, namespace, tmp_path, server_side_apply
):
    chart = write_chart(tmp_path, "demo")
    config = Configuration(namespace=namespace, kubeconfig=str(apiserver["kubeconfig"]))
    release = asyncio.run(
        Install(config).run(
            "demo",
            str(chart),
            values={"greeting": "hi", "size": 3},
            wait=False,
            timeout=60,
            server_side_apply=server_side_apply,
        )
    )
    assert release["info"]["status"] == "deployed"
    assert "kind: Widget" in release["manifest"]

    settings = core.read_namespaced_config_map("demo-settings", namespace)
    assert settings.data == {"greeting": "hi"}
    assert settings.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
    assert settings.metadata.annotations["meta.helm.sh/release-name"] == "demo"
    widget = custom.get_namespaced_custom_object(WIDGET_GROUP, WIDGET_VERSION, namespace, WIDGET_PLURAL, "demo-widget")
    assert widget["spec"] == {"size": 3}
