"""The CRD is generated from the policy schema: crds/ is current, structural, valid, and accepts the examples."""

from __future__ import annotations

import glob
import pathlib
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from modelroute.cli import main
from modelroute.operator.crd import crd, crd_yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "routingpolicies.modelroute.dev.yaml"


def test_crds_folder_is_not_stale() -> None:
    assert CRD_FILE.read_text() == crd_yaml(), "crds/ is stale: run `modelroute crds -o crds/routingpolicies.modelroute.dev.yaml`"


def test_chart_carries_the_same_crd() -> None:
    chart_copy = ROOT / "charts" / "modelroute" / "files" / "crds" / "routingpolicies.modelroute.dev.yaml"
    assert chart_copy.read_text() == crd_yaml(), "the chart's CRD copy is stale: cp crds/*.yaml charts/modelroute/files/crds/"


def test_crds_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == crd()


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.get("properties", {}).items():
            yield from _nodes(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            yield from _nodes(node["items"], path + "[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _nodes(node["additionalProperties"], path + "{}")


def test_schema_is_structural() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _nodes(schema):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), f"{path}: properties and additionalProperties"
        assert not {"anyOf", "oneOf", "const"} & set(node), f"{path} uses a construct CRDs do not allow"
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"]), path


def test_spec_has_descriptions_selector_priority_and_cel_rules() -> None:
    version = crd()["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert {"selector", "priority", "models", "providers", "routes", "default"} <= set(spec["properties"])
    assert spec["properties"]["models"]["items"]["description"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("self.default" in r for r in rules)
    assert spec["properties"]["routes"]["items"]["x-kubernetes-validations"][0]["rule"] == "has(self.model) != has(self.strategy)"
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Default", "Models", "Synced", "Accepted", "Version", "Age"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"observedGeneration", "policyVersion", "conditions", "selectedPods", "syncedPods"} <= set(status)


def test_crd_passes_kubernetes_validate() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    kv.validate(crd(), "1.33.0", strict=True)


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "examples" / "0*" / "policy.yaml"))))
def test_examples_fit_the_crd_schema(path: str) -> None:
    """The API server's view (OpenAPI v3 = JSON Schema draft 4 here), on every example policy."""
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    doc = yaml.safe_load(pathlib.Path(path).read_text())
    jsonschema.Draft4Validator(schema).validate(doc)


def test_crd_schema_rejects_what_the_api_server_would() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    bad = {"apiVersion": "modelroute.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": "x"},
           "spec": {"providers": [{"name": "p", "type": "grpc", "baseURL": "http://x"}], "models": [], "default": "m"}}
    errors = {e.validator for e in jsonschema.Draft4Validator(schema).iter_errors(bad)}
    assert "enum" in errors
