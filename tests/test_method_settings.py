"""Typed method settings: every built-in declares a pydantic model; a misspelt or mistyped
key in a method YAML or in overrides is a ConfigError naming the file and the key path;
the hooks the runner and the training loop read (validate_training, train_on_whole_plates,
discriminator_start, describe()'s ocr_seen_in_training)."""
from __future__ import annotations

import pytest

from lpsr import registry
from lpsr.config import ConfigError
from lpsr.method import Method, MethodError, MethodSettings
from lpsr.train.settings import TrainSettings


@pytest.fixture
def fresh_registry():
    registry.discover.cache_clear()
    yield registry
    registry.discover.cache_clear()


def _configs_with(tmp_path, monkeypatch, files: dict[str, str]):
    """A copy of the built-in method YAMLs with some replaced, as $LPSR_CONFIGS."""
    from lpsr.config import configs_dir

    src = configs_dir()
    cfgs = tmp_path / "configs"
    (cfgs / "methods").mkdir(parents=True)
    (cfgs / "profiles").mkdir()
    for p in (src / "methods").glob("*.yaml"):
        (cfgs / "methods" / p.name).write_text(p.read_text())
    for p in (src / "profiles").glob("*.yaml"):
        (cfgs / "profiles" / p.name).write_text(p.read_text())
    for name, text in files.items():
        (cfgs / "methods" / name).write_text(text)
    monkeypatch.setenv("LPSR_CONFIGS", str(cfgs))
    return cfgs


def test_every_builtin_declares_a_strict_settings_model(fresh_registry):
    for name in fresh_registry.names():
        entry = fresh_registry.get(name)
        assert entry.cls.Settings is not None and issubclass(entry.cls.Settings, MethodSettings), name
        assert entry.cls.Settings.model_config["extra"] == "forbid"
        method = entry.create(8)
        # the resolved settings (every default filled in) are what a run records
        assert method.config == method.settings.model_dump(mode="json")


@pytest.mark.parametrize(
    "name, text, path",
    [
        ("esrgan.yaml", "blcoks: 3\n", "blcoks: unknown key 'blcoks' (did you mean 'blocks'?)"),
        ("esrgan.yaml", "blocks: 4.7\n", "blocks: expected an integer"),
        ("esrgan.yaml", "blocks: true\n", "blocks: expected an integer"),
        ("tbsrn.yaml", "stn: yes please\n", "stn: expected true or false"),
        ("msrn.yaml", "channels: 64\npixel_loss: l3\n", "pixel_loss: expected one of 'l1' or 'mse', got 'l3'"),
        ("pecl.yaml", "net: {channels: 64, widht: 3}\n", "net.widht: unknown key 'widht'; known: channels, blocks"),
        ("pecl.yaml", "weights: {pixel: 1.0}\n", "weights.con: required"),
        ("swinir.yaml", "depths: six\n", "depths: expected a list"),
        ("bicubic.yaml", "kernal: pil\n", "kernal: unknown key 'kernal' (did you mean 'kernel'?); known: kernel"),
    ],
)
def test_yaml_typos_name_the_file_and_the_key_path(tmp_path, monkeypatch, fresh_registry, name, text, path):
    _configs_with(tmp_path, monkeypatch, {name: text})
    method = name.removesuffix(".yaml")
    with pytest.raises(ConfigError) as err:
        fresh_registry.get(method).create(8)
    message = str(err.value)
    assert f"methods/{name}: {path}" in message, message
    assert "\n" not in message
    assert isinstance(err.value, MethodError)  # also a MethodError, as before


def test_variant_yaml_typo_names_the_variant_file(tmp_path, monkeypatch, fresh_registry):
    _configs_with(tmp_path, monkeypatch, {"pecl-typo.yaml": "base: pecl\nembeding_dim: 64\n"})
    with pytest.raises(ConfigError, match=r"methods/pecl-typo\.yaml \(variant of pecl\): embeding_dim: unknown key 'embeding_dim'"):
        fresh_registry.get("pecl-typo").create(8)


def test_override_typos_are_named_as_overrides_of_the_yaml(fresh_registry):
    with pytest.raises(ConfigError, match=r"overrides of configs/methods/tbsrn\.yaml: text_los: unknown key 'text_los'"):
        fresh_registry.get("tbsrn").create(8, {"text_los": "none"})
    with pytest.raises(ConfigError, match=r"overrides of .*pecl\.yaml: net\.blocks: expected an integer, got '7'"):
        fresh_registry.get("pecl").create(8, {"net": {"blocks": "7"}})
    with pytest.raises(ConfigError, match="embedding_dim: expected one of 64, 128, 256 or 512, got 100"):
        fresh_registry.get("pecl").create(8, {"embedding_dim": 100})


def test_float_settings_accept_ints_and_yaml_number_strings_not_booleans(fresh_registry):
    m = fresh_registry.get("tbsrn").create(8, {"content_weight": "1e-4", "position_weight": 3})
    assert m.settings.content_weight == 1e-4 and m.settings.position_weight == 3.0
    with pytest.raises(ConfigError, match="position_weight"):
        fresh_registry.get("tbsrn").create(8, {"position_weight": True})


def test_one_source_of_defaults_yaml_holds_only_differences(fresh_registry):
    """ESRGAN's defaults used to live in three places (YAML, method, recipe): now the
    settings model is the only one; its recipe built without arguments agrees."""
    from lpsr.losses.esrgan import ESRGANLossSettings

    entry = fresh_registry.get("esrgan")
    assert set(entry.defaults) <= {"train"}
    esrgan = entry.create(8)
    assert esrgan.settings.pretrain_fraction == ESRGANLossSettings().pretrain_fraction == 0.5
    for name in ("tbsrn", "pecl", "swinir", "msrn", "srcnn", "espcn", "bicubic"):
        assert not set(fresh_registry.get(name).defaults) - {"train"}, name


def test_untyped_plugin_methods_keep_their_raw_config():
    class Legacy(Method):
        name = "legacy"

    m = Legacy(2, {"anything": 1})
    assert m.settings is None and m.config == {"anything": 1}


# ------------------------------------------------------------------ hooks
def test_validate_training_is_a_no_op_by_default_and_esrgan_checks_the_discriminator(fresh_registry):
    assert fresh_registry.get("msrn").create(8).validate_training(TrainSettings(patch_size=48)) is None
    esrgan = fresh_registry.get("esrgan").create(8)
    esrgan.validate_training(TrainSettings(patch_size=64))
    with pytest.raises(MethodError, match=r"esrgan\.yaml: disc_input_size 64 does not match train\.patch_size 96"):
        esrgan.validate_training(TrainSettings(patch_size=96))
    fresh_registry.get("esrgan").create(8, {"disc_input_size": 96}).validate_training(TrainSettings(patch_size=96))
    with pytest.raises(ConfigError, match="disc_input_size"):
        fresh_registry.get("esrgan").create(8, {"disc_input_size": 48})


def test_discriminator_starts_after_pretraining():
    from lpsr.losses.esrgan import ESRGANRecipe
    from lpsr.losses.perceptual import PerceptualLoss

    recipe = ESRGANRecipe(pretrain_fraction=0.5, disc_input_size=32, perceptual=PerceptualLoss("random-vgg19"))
    assert recipe.discriminator_start(100) == 50
    assert not recipe.in_gan_stage(50, 100) and recipe.in_gan_stage(51, 100)
    assert recipe.discriminator_start(7) == 3 and recipe.in_gan_stage(4, 7)


def test_only_tbsrn_trains_on_whole_plates(fresh_registry):
    flags = {n: fresh_registry.get(n).cls.train_on_whole_plates for n in fresh_registry.groups()["all"]}
    assert flags.pop("tbsrn") is True
    assert not any(flags.values())
    assert fresh_registry.get("tbsrn").create(8).describe()["train_on_whole_plates"] is True


def test_describe_names_the_recognisers_seen_in_training(fresh_registry, monkeypatch):
    import lpsr.losses.siamese as siamese

    monkeypatch.setattr(siamese, "plate_ocr_available", lambda: (True, "ok"))
    seen = {n: fresh_registry.get(n).create(8).describe()["ocr_seen_in_training"] for n in fresh_registry.groups()["all"]}
    assert seen["tbsrn"] == ["plate"]
    assert seen["pecl-pull"] == ["plate"]
    assert seen["esrgan"] in (["plate"], [])  # [] only when ImageNet VGG19 is on disk
    for name in ("bicubic", "srcnn", "msrn", "espcn", "swinir", "mse"):
        assert seen[name] == [], name
    assert fresh_registry.get("tbsrn").create(8, {"text_loss": "none"}).describe()["ocr_seen_in_training"] == []
    assert fresh_registry.get("tbsrn").create(8, {"text_loss": "ppocr"}).describe()["ocr_seen_in_training"] == ["ppocr"]
    esrgan = fresh_registry.get("esrgan").create(8, {"perceptual_net": "random-vgg19"})
    assert esrgan.describe()["ocr_seen_in_training"] == []


def test_published_recipes_are_valid_train_blocks(fresh_registry):
    """Every method YAML's train block passes the training-settings model."""
    recipes = {}
    for name in fresh_registry.names():
        block = fresh_registry.get(name).train_overrides
        TrainSettings.from_dict(block, where=f"configs/methods/{name}.yaml train")
        recipes[name] = block
    assert recipes["tbsrn"]["betas"] == [0.5, 0.999] and recipes["tbsrn"]["grad_clip"] == 0.25
    assert recipes["swinir"]["lr"] == 2e-4
    assert recipes["esrgan"]["betas"] == [0.9, 0.99] and recipes["esrgan"]["lr_d"] == 1e-4
    assert recipes["msrn"]["lr"] == 1e-4 and "schedule" not in recipes["msrn"]  # budget-dependent: per profile
    assert fresh_registry.get("tbsrn").create(8).settings.loss_scale == 100.0


def test_paper_profile_imposes_its_protocol_and_study_profiles_keep_the_recipes(fresh_registry):
    """`paper` sets method_recipes: false (every method gets the paper's Adam 1e-4, cosine,
    batch 128); `quick` layers each method's published recipe over the profile."""
    from lpsr.profile import load_profile

    tbsrn = fresh_registry.get("tbsrn").train_overrides
    _, paper = load_profile("paper")
    block = paper.train_for("tbsrn", tbsrn)
    assert block.lr == 1e-4 and block.batch_size == 128 and list(block.betas) == [0.9, 0.999] and block.grad_clip == 0
    _, quick = load_profile("quick")
    block = quick.train_for("tbsrn", tbsrn)
    assert list(block.betas) == [0.5, 0.999] and block.grad_clip == 0.25
