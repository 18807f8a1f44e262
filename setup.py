"""Package list for setuptools (everything else is in pyproject.toml).

The repository keeps profiles and method YAMLs in ``configs/`` at the top level; the wheel
ships that folder as ``lpsr/_configs`` (``lpsr.config.configs_dir`` looks there first), so
an installed ``bench`` never reads the source tree.
"""
from setuptools import find_packages, setup

CONFIG_PACKAGES = ["lpsr._configs", "lpsr._configs.methods", "lpsr._configs.profiles"]

setup(
    packages=find_packages(include=["lpsr*", "methods*", "bench*"]) + CONFIG_PACKAGES,
    package_dir={"lpsr._configs": "configs"},
)
