"""The release artefacts: `python -m build` makes an sdist and a wheel that
`twine check` accepts, and the wheel installed into a clean virtual
environment (no checkout on its path) reports this version and scans an image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv

import pytest

from smtpgate import __version__
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_sdist_and_wheel_build_and_pass_twine_check(dist):
    names = sorted(p.name for p in dist.iterdir())
    assert names == [f"smtpgate-{__version__}-py3-none-any.whl", f"smtpgate-{__version__}.tar.gz"]
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.count("PASSED") == 2, done.stdout + done.stderr


def test_the_wheel_installs_and_scans_in_a_clean_venv(dist, tmp_path, images):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    (wheel,) = dist.glob("*.whl")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=600, env=clean)
    assert done.returncode == 0, done.stderr[-2000:]
    version = subprocess.run([str(bin_dir / "smtpgate"), "--version"], capture_output=True, text=True,
                             cwd=tmp_path, env=clean)
    assert version.stdout.strip() == f"smtpgate {__version__}"
    report = tmp_path / "r.json"
    scan = subprocess.run([str(bin_dir / "smtpgate"), "scan", "smtpgate-fixture/postfix-all", "--pull", "never",
                           "-q", "--json", str(report)], capture_output=True, text=True, cwd=tmp_path, env=clean,
                          timeout=300)
    assert scan.returncode == 1, scan.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["smtpgate"] == __version__
    assert [f["software"]["id"] for f in data["targets"][0]["findings"]] == ["postfix"]
    where = subprocess.run([str(bin_dir / "python"), "-c", "import smtpgate; print(smtpgate.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert where.stdout.startswith(str(env_dir)), where.stdout  # the installed wheel, not the checkout
