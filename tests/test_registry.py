"""Method discovery: built-ins, YAML variants, entry-point plug-ins, name resolution."""
from __future__ import annotations

import sys
import textwrap

import pytest

from lpsr import registry
from lpsr.method import Method, MethodError


@pytest.fixture
def fresh_registry():
    registry.discover.cache_clear()
    yield registry
    registry.discover.cache_clear()


def test_builtins_are_discovered(fresh_registry):
    names = fresh_registry.names()
    assert names[0] == "bicubic"  # Table 1 order
    assert "tiny" in names
    assert "tiny" not in fresh_registry.groups()["all"]  # test-only method
    assert "bicubic" in fresh_registry.groups()["all"]


def test_resolve_groups_lists_and_typos(fresh_registry):
    assert fresh_registry.resolve("bicubic,tiny,bicubic") == ["bicubic", "tiny"]
    assert fresh_registry.resolve("smoke") == ["tiny"]
    with pytest.raises(MethodError, match=r"unknown method 'bicubik'; did you mean bicubic"):
        fresh_registry.resolve("bicubik")
    with pytest.raises(MethodError, match="empty"):
        fresh_registry.resolve(" , ")


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch, fresh_registry):
    (tmp_path / "lpsr_demo_plugin.py").write_text(textwrap.dedent('''
        from torch import nn
        from lpsr.method import Method

        class Demo(Method):
            name = "demo-plugin"
            source = "a third-party package"
            def build(self):
                return nn.Sequential(nn.Upsample(scale_factor=self.scale), nn.Conv2d(3, 3, 1))
    '''))
    dist = tmp_path / "lpsr_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lpsr-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lpsr.methods]\ndemo-plugin = lpsr_demo_plugin:Demo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = fresh_registry.get("demo-plugin")
    assert entry.origin == "plugin:lpsr-demo-plugin"
    method = entry.create(4)
    assert isinstance(method, Method) and method.param_count() == 12
    assert "demo-plugin" in fresh_registry.groups()["all"]
    sys.modules.pop("lpsr_demo_plugin", None)


def _method_package(tmp_path, monkeypatch, modules: dict[str, str], package: str = "lpsr_lazy_pkg"):
    """A method package registered under ``lpsr.method_packages`` by its own distribution;
    returns its folder."""
    pkg = tmp_path / package
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in modules.items():
        (pkg / f"{name}.py").write_text(textwrap.dedent(text))
    dist = tmp_path / f"{package}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[lpsr.method_packages]\n{package} = {package}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.discover.cache_clear()
    return pkg


def test_method_packages_come_from_entry_points_not_from_lpsr(tmp_path, monkeypatch, fresh_registry):
    """Built-ins are found through the ``lpsr.method_packages`` entry point this distribution
    registers (``lpsr`` never imports ``methods`` by name); another distribution can
    register a whole package the same way, and a module added to it is found at once."""
    assert fresh_registry.get("pecl").origin == "built-in"
    pkg = _method_package(tmp_path, monkeypatch, {"first": '''
        from torch import nn
        from lpsr.method import Method

        class First(Method):
            name = "demo-first"
            def build(self):
                return nn.Sequential(nn.Upsample(scale_factor=self.scale), nn.Conv2d(3, 3, 1))
    '''}, package="lpsr_demo_pkg")
    assert fresh_registry.get("demo-first").origin == "plugin:lpsr-demo-pkg"
    (pkg / "second.py").write_text((pkg / "first.py").read_text().replace("First", "Second").replace("demo-first", "demo-second"))
    fresh_registry.discover.cache_clear()
    assert fresh_registry.get("demo-second").create(2).param_count() == 12
    for mod in ("lpsr_demo_pkg", "lpsr_demo_pkg.first", "lpsr_demo_pkg.second"):
        sys.modules.pop(mod, None)


def test_broken_plugin_names_itself(tmp_path, monkeypatch, fresh_registry):
    dist = tmp_path / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lpsr.methods]\nbroken = no_such_module_xyz:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "broken" in fresh_registry.discover()  # indexed by its entry point, not imported
    assert fresh_registry.get("bicubic").create(8).name == "bicubic"  # other methods still work
    with pytest.raises(MethodError, match="entry point 'broken'.*failed to import") as err:
        fresh_registry.get("broken").cls
    assert isinstance(err.value.__cause__, ModuleNotFoundError)  # the original error, chained


GOOD = '''
    from torch import nn
    from lpsr.method import Method

    class Good(Method):
        name = "lazy-good"
        def build(self):
            return nn.Conv2d(3, 3 * self.scale ** 2, 1)
'''


def test_a_broken_method_module_fails_only_when_its_method_is_used(tmp_path, monkeypatch, fresh_registry):
    _method_package(tmp_path, monkeypatch, {
        "good": GOOD,
        # imports fine as source text (its name is indexed), fails when imported
        "bad": '''
            from lpsr.method import Method
            raise RuntimeError("bad module: missing dependency")

            class Bad(Method):
                name = "lazy-bad"
        ''',
        # not even Python: indexed only under its module name
        "broken_syntax": "class Oops(:\n",
    })
    try:
        assert {"lazy-good", "lazy-bad"} <= set(fresh_registry.discover())
        assert "lpsr_lazy_pkg.bad" not in sys.modules and "lpsr_lazy_pkg.good" not in sys.modules
        # commands that need other methods do not import the broken modules
        assert fresh_registry.resolve("lazy-good,bicubic") == ["lazy-good", "bicubic"]
        assert fresh_registry.get("lazy-good").create(2).param_count() == 3 * 12 + 12
        assert "lpsr_lazy_pkg.bad" not in sys.modules
        # the broken one fails when asked for, naming its file, with the original error chained
        with pytest.raises(MethodError, match=r"lpsr_lazy_pkg/bad.py: method module lpsr_lazy_pkg.bad failed to import: RuntimeError: bad module") as err:
            fresh_registry.get("lazy-bad").create(2)
        assert isinstance(err.value.__cause__, RuntimeError) and err.value.__cause__.__traceback__ is not None
        with pytest.raises(MethodError, match=r"broken_syntax.py line 1: method module lpsr_lazy_pkg.broken_syntax failed to import: SyntaxError") as err:
            fresh_registry.get("broken-syntax")
        assert isinstance(err.value.__cause__, SyntaxError)
        # a typo elsewhere is still "unknown method", not the broken module's error
        with pytest.raises(MethodError, match="unknown method 'lazy-goood'; did you mean lazy-good"):
            fresh_registry.get("lazy-goood")
        # listing every method needs every module: that command fails, naming the module
        with pytest.raises(MethodError, match=r"lpsr_lazy_pkg\.(bad|broken_syntax) failed to import"):
            fresh_registry.names()
    finally:
        for mod in [m for m in sys.modules if m.startswith("lpsr_lazy_pkg")]:
            sys.modules.pop(mod, None)


def test_the_index_imports_no_method_module(fresh_registry):
    before = {m for m in sys.modules if m.startswith("methods.")}
    table = fresh_registry.discover()
    assert {"bicubic", "pecl", "swinir", "mse-skip"} <= set(table)
    assert {m for m in sys.modules if m.startswith("methods.")} == before
    assert fresh_registry.known() == sorted(table)


def test_yaml_variant_becomes_a_method(tmp_path, monkeypatch, fresh_registry):
    cfgs = tmp_path / "configs"
    (cfgs / "methods").mkdir(parents=True)
    (cfgs / "methods" / "tiny.yaml").write_text("channels: 16\ntrain: {lr: 0.002}\n")
    (cfgs / "methods" / "tiny-wide.yaml").write_text("base: tiny\ngroups: [wide]\nchannels: 32\n")
    monkeypatch.setenv("LPSR_CONFIGS", str(cfgs))
    entry = fresh_registry.get("tiny-wide")
    assert entry.origin == "variant of tiny"
    method = entry.create(2)
    assert method.name == "tiny-wide" and method.config["channels"] == 32
    assert entry.train_overrides == {"lr": 0.002}  # inherited from the base
    assert "train" not in method.config
    assert fresh_registry.resolve("wide") == ["tiny-wide"]
    assert "tiny-wide" not in fresh_registry.groups()["all"]


def test_pow2_scale_rule():
    class Pow2(Method):
        name = "pow2-only"
        scales = "pow2"

    Pow2(8)
    with pytest.raises(MethodError, match="power-of-two --scale.*got 6"):
        Pow2(6)
    with pytest.raises(MethodError, match="positive integer"):
        Pow2(0)
