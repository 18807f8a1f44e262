"""A non-editable install works from any directory: build the wheel, install it in a fresh
venv (`--no-deps`, so nothing is downloaded), then run `bench list` and a tiny `bench run`
from a temporary directory.

The venv sees torch & co. through a ``.pth`` file listing the site-packages of the
interpreter RUNNING the tests (a venv, a conda env or the system Python alike), not through
``--system-site-packages``, which would point at the base interpreter: inside a virtualenv
that has none of the packages.  A ``.pth`` adds those folders after the venv's own, so the
installed wheel, not the source tree or an editable install, is what gets imported."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("lpsr", "methods", "bench", "configs", "setup.py", "pyproject.toml", "README.md")


def running_site_packages() -> list[str]:
    """The site-packages folders of the interpreter running the tests (venv, conda or system)."""
    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        paths.append(site.getusersitepackages())
    return list(dict.fromkeys(p for p in paths if os.path.isdir(p)))


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        path = REPO / name
        (shutil.copytree(path, src / name, ignore=ignore) if path.is_dir() else shutil.copy2(path, src / name))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root / "dist"), str(src)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    wheel = next((root / "dist").glob("lpsr_bench-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    py = root / "venv" / "bin" / "python"
    venv_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, timeout=300).stdout.strip()
    (Path(venv_site) / "_running_interpreter.pth").write_text("\n".join(running_site_packages()) + "\n")
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr
    work = root / "elsewhere"
    work.mkdir()
    return wheel, root / "venv", work


def test_wheel_ships_every_package_and_the_configs(wheel_venv):
    wheel, _, _ = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("lpsr", "methods", "bench"):
        for init in (REPO / top).rglob("__init__.py"):
            assert str(init.relative_to(REPO)) in names, f"{init} missing from the wheel"
    for yaml_file in (REPO / "configs").rglob("*.yaml"):
        assert f"lpsr/_configs/{yaml_file.relative_to(REPO / 'configs')}" in names
    assert "lpsr/assets/NotoSansCJKsc-Bold-plate.otf" in names


def test_installed_bench_lists_and_runs_from_another_directory(wheel_venv):
    _, venv, work = wheel_venv
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LPSR_CONFIGS")}
    py = venv / "bin" / "python"
    where = subprocess.run([str(py), "-c", "import lpsr, methods, bench; from lpsr.config import configs_dir; "
                            "print(lpsr.__file__); print(methods.__file__); print(configs_dir())"],
                           capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert line.startswith(str(venv)), f"{line} is not the installed copy"
    listed = subprocess.run([str(venv / "bin" / "bench"), "list", "--scale", "8"], capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert listed.returncode == 0, listed.stderr
    # the installed copy builds the same networks as this source tree (parameter counts as listed)
    from lpsr import registry
    from lpsr.method import count_parameters

    tiny_params = count_parameters(registry.get("tiny").create(8).build())
    assert "bicubic" in listed.stdout and "pecl" in listed.stdout and f"{tiny_params:,}" in listed.stdout
    ran = subprocess.run([str(venv / "bin" / "bench"), "run", "--methods", "bicubic,tiny", "--profile", "test", "--ocr", "none", "--limit", "4"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert (work / "runs" / "synthetic-x8-test" / "tiny" / "result.json").exists()
    assert (work / "leaderboards" / "synthetic-x8-test.md").exists()
