"""Package list for setuptools (everything else is in pyproject.toml).

The repository keeps profiles and method YAMLs in ``configs/`` at the top level; the wheel
ships that folder as ``lpsr/_configs`` (``lpsr.config.configs_dir`` looks there first), so
an installed ``bench`` never reads the source tree.
"""
from pathlib import Path

from setuptools import find_packages, setup

# Every folder of configs/ (profiles, methods, degradations, ...) is a data package: a new
# folder ships without editing this file or pyproject.toml.
CONFIGS = Path(__file__).resolve().parent / "configs"
CONFIG_PACKAGES = ["lpsr._configs"] + sorted(
    "lpsr._configs." + d.name for d in CONFIGS.iterdir() if d.is_dir() and not d.name.startswith((".", "_"))
)

setup(
    packages=find_packages(include=["lpsr*", "methods*", "bench*"]) + CONFIG_PACKAGES,
    package_dir={"lpsr._configs": "configs"},
    package_data={
        "lpsr": ["assets/*", "assets/**/*"],
        "bench": ["scaffold/templates/*"],
        **{name: ["*.yaml", "*.md"] for name in CONFIG_PACKAGES},
    },
)
