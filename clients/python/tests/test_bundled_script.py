"""The scripts the client ships are the published ones, byte for byte."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from flotilla_client import batch_script_text, flow_script_text, script_text

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_the_bundled_script_is_protocol_v2_enqueue_lua() -> None:
    published = (REPO_ROOT / "protocol" / "v2" / "enqueue.lua").read_bytes()
    bundled = resources.files("flotilla_client").joinpath("enqueue.lua").read_bytes()
    assert bundled == published
    assert script_text().encode("utf-8") == published


def test_the_bundled_flow_script_is_protocol_v2_enqueue_flow_lua() -> None:
    published = (REPO_ROOT / "protocol" / "v2" / "enqueue_flow.lua").read_bytes()
    bundled = resources.files("flotilla_client").joinpath("enqueue_flow.lua").read_bytes()
    assert bundled == published
    assert flow_script_text().encode("utf-8") == published


def test_the_bundled_batch_script_is_protocol_v2_batch_lua() -> None:
    published = (REPO_ROOT / "protocol" / "v2" / "batch.lua").read_bytes()
    bundled = resources.files("flotilla_client").joinpath("batch.lua").read_bytes()
    assert bundled == published
    assert batch_script_text().encode("utf-8") == published


def test_the_package_is_marked_typed() -> None:
    assert resources.files("flotilla_client").joinpath("py.typed").is_file()
