"""--shard K/N and --shard auto (the CI's own parallel index)."""

from __future__ import annotations

import pytest

from smtpgate.cli import main
from smtpgate.scan.runner import auto_shard, shard

IMAGES = [f"app{i}" for i in range(7)]


def test_gitlab_parallel_index_and_total():
    assert auto_shard("auto", {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}) == "2/3"
    assert shard(IMAGES, "auto", {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}) == shard(IMAGES, "2/3")
    assert auto_shard("auto", {"CI_NODE_TOTAL": "1"}) == "1/1"  # a GitLab job without parallel:


def test_kubernetes_indexed_job_needs_the_total():
    assert auto_shard("auto/4", {"JOB_COMPLETION_INDEX": "0"}) == "1/4"
    assert shard(IMAGES, "auto/4", {"JOB_COMPLETION_INDEX": "3"}) == ["app3"]
    with pytest.raises(ValueError, match="auto/N"):
        auto_shard("auto", {"JOB_COMPLETION_INDEX": "0"})
    with pytest.raises(ValueError, match="not a number"):
        auto_shard("auto/2", {"JOB_COMPLETION_INDEX": "x"})
    with pytest.raises(ValueError, match="K must be between 1 and N"):
        shard(IMAGES, "auto/2", {"JOB_COMPLETION_INDEX": "2"})


def test_every_auto_slice_together_is_the_list():
    slices = [shard(IMAGES, "auto", {"CI_NODE_INDEX": str(k), "CI_NODE_TOTAL": "3"}) for k in (1, 2, 3)]
    assert sorted(sum(slices, [])) == sorted(IMAGES)


def test_no_index_or_a_contradicting_total_is_an_error():
    with pytest.raises(ValueError, match="no parallel index"):
        auto_shard("auto", {})
    with pytest.raises(ValueError, match="CI_NODE_TOTAL is 3"):
        auto_shard("auto/4", {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"})


def test_cli_shard_auto_without_an_index_exits_2(tmp_path, monkeypatch):
    for name in ("CI_NODE_INDEX", "CI_NODE_TOTAL", "JOB_COMPLETION_INDEX"):
        monkeypatch.delenv(name, raising=False)
    assert main(["scan", "app:1", "--shard", "auto", "-q", "--json", str(tmp_path / "r.json")]) == 2
    assert "no parallel index" in (tmp_path / "r.json").read_text()
