"""helm (the real Helm Go SDK, via PyPI helm-python-sdk) against wharf: push, tags, resolve, pull."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import OCI_MANIFEST, fetch_manifest, get_blob_verified, require_module, sha256_digest

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def test_helm_push_pull(wharf, tmp_path, monkeypatch):
    require_module("helm_python")
    import helm_python as helm

    monkeypatch.chdir(tmp_path)
    helm.Chart.create("demo", str(tmp_path))
    chart_dir = tmp_path / "demo"
    assert (chart_dir / "Chart.yaml").exists()
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    tgz1 = Path(helm.package(str(chart_dir), destination=str(pkgs)))
    tgz2 = Path(helm.package(str(chart_dir), destination=str(pkgs), version="0.2.0"))
    assert tgz1.name == "demo-0.1.0.tgz" and tgz2.name == "demo-0.2.0.tgz"

    client = helm.RegistryClient(plain_http=True, credentials_file=str(tmp_path / "registry.json"))
    remote = f"oci://{wharf.host}/charts"
    helm.push(str(tgz1), remote, client=client, plain_http=True)
    client.push(str(tgz2), remote, plain_http=True)

    # what the registry holds: an OCI manifest (no mediaType field) with helm config + chart layer
    body, digest, media_type = fetch_manifest(wharf, "charts/demo", "0.1.0")
    assert media_type == OCI_MANIFEST
    m = json.loads(body)
    assert m["config"]["mediaType"] == HELM_CONFIG
    assert [x["mediaType"] for x in m["layers"]] == [HELM_CHART]
    assert m["layers"][0]["digest"] == sha256_digest(tgz1.read_bytes())
    assert get_blob_verified(wharf, "charts/demo", m["layers"][0]["digest"]) == tgz1.read_bytes()

    assert client.tags(f"{remote}/demo") == ["0.2.0", "0.1.0"]
    desc = client.resolve(f"{remote}/demo:0.1.0")
    assert desc["digest"] == digest and desc["size"] == len(body)

    pulled = tmp_path / "pulled"
    pulled.mkdir()
    helm.pull(f"{remote}/demo", version="0.1.0", destination=str(pulled), plain_http=True)
    assert (pulled / "demo-0.1.0.tgz").read_bytes() == tgz1.read_bytes()
    client.pull(f"{remote}/demo", version="0.2.0", destination=str(pulled), plain_http=True)
    assert (pulled / "demo-0.2.0.tgz").read_bytes() == tgz2.read_bytes()
