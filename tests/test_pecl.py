"""PECL: the paper's network, the authors' variant, the Siamese embedding and the loss."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lpsr import registry
from lpsr.losses import siamese as siamese_mod
from lpsr.losses.pecl import LossWeights, PeclRecipe, contrastive_loss, cross_distance
from lpsr.losses.siamese import IMAGENET_FILE, ResNetEmbedding, build_embedding, resolve_init
from lpsr.method import Batch, MethodError, count_parameters
from lpsr.models.pecl_net import PeclNet
from lpsr.models.pecl_official import PeclOfficialNet


@pytest.fixture(autouse=True)
def one_thread():
    """These tests are small; one thread avoids spin-wait slowdowns on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_net(scale: int = 2) -> PeclNet:
    return PeclNet(scale, channels=16, blocks=1, growth=8, convs=2, reduction=4)


def small_resnet_embedding(dim: int = 64) -> ResNetEmbedding:
    torch.manual_seed(0)
    return ResNetEmbedding(dim)


# ------------------------------------------------------------------ networks
def test_pecl_net_is_about_2m_parameters_at_x8():
    # the paper states only "about 2M parameters" at x8 (Table 1): 2M to the nearest million
    assert round(count_parameters(PeclNet(8)), -6) == 2_000_000


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("lr_hw", [(8, 24), (8, 8)])
def test_pecl_net_output_shape(scale, lr_hw):
    net = PeclNet(scale)
    with torch.no_grad():
        out = net(torch.rand(1, 3, *lr_hw))
    assert out.shape == (1, 3, lr_hw[0] * scale, lr_hw[1] * scale)


def test_pecl_rejects_non_power_of_two_scales_once_on_the_method():
    for name in ("pecl", "mse", "pecl-official-arch"):
        for scale in (1, 3, 6):
            with pytest.raises(MethodError, match=rf"method '{registry.get(name).cls.name}' needs a power-of-two --scale \(2, 4, 8, ...\), got {scale}"):
                registry.get(name).create(scale)
    with pytest.raises(MethodError, match=r"pecl\.yaml: net: channels \(30\) must be divisible by reduction \(4\)"):
        registry.get("pecl").create(8, {"net": {"channels": 30, "reduction": 4}})


def test_official_arch_shape_and_parameters():
    method = registry.get("pecl-official-arch").create(8)
    net = method.build()
    assert isinstance(net, PeclOfficialNet)
    assert count_parameters(net) == 9_008_234
    with torch.no_grad():
        assert net(torch.rand(1, 3, 8, 24)).shape == (1, 3, 64, 192)
    assert method.describe()["network"].startswith("PeclOfficialNet")
    assert PeclOfficialNet(4, blocks=1)(torch.rand(2, 3, 8, 8)).shape == (2, 3, 32, 32)


# ------------------------------------------------------------------ distances and forms
E1, E2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])


def test_distance_of_two_unit_vectors():
    assert cross_distance(E1, E2, "manhattan").item() == pytest.approx(2.0)
    assert cross_distance(E1, E2, "euclidean").item() == pytest.approx(math.sqrt(2))
    with pytest.raises(MethodError, match="distance"):
        cross_distance(E1, E2, "cosine")


def _value_and_grad(form, distance, sr, hr):
    sr = sr.clone().requires_grad_(True)
    value, d = contrastive_loss(sr, hr, form, distance, margin=2.0)
    value.backward()
    return value.item(), d.item(), sr.grad


def test_paper_eq17_pushes_apart_and_is_zero_beyond_the_margin():
    # Euclidean: D = sqrt(2) < m, so L = (2 - sqrt 2)^2 and dL/da = -2 (m - D) (a - b) / D
    value, d, grad = _value_and_grad("paper-eq17", "euclidean", E1, E2)
    r2 = math.sqrt(2)
    assert value == pytest.approx((2 - r2) ** 2)
    assert d == pytest.approx(r2)
    expected = -2 * (2 - r2) * torch.tensor([[1.0, -1.0]]) / r2
    assert torch.allclose(grad, expected, atol=1e-6)
    # moving along -grad increases D: the printed Eq. 17 pushes SR away from HR
    # Manhattan: D = 2 = m, so the loss and its gradient vanish
    value, d, grad = _value_and_grad("paper-eq17", "manhattan", E1, E2)
    assert value == 0.0 and d == pytest.approx(2.0)
    assert torch.count_nonzero(grad) == 0


def test_pull_is_distance_squared():
    value, d, grad = _value_and_grad("pull", "manhattan", E1, E2)
    assert value == pytest.approx(4.0)  # D^2 with D = 2
    assert torch.allclose(grad, torch.tensor([[4.0, -4.0]]))  # 2 D sign(a - b)
    value, _, grad = _value_and_grad("pull", "euclidean", E1, E2)
    assert value == pytest.approx(2.0)
    assert torch.allclose(grad, torch.tensor([[2.0, -2.0]]), atol=1e-6)  # 2 (a - b)


def test_hadsell_pulls_positives_and_pushes_in_batch_negatives():
    sr = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    hr = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    # Manhattan: D11 = 1.2, D22 = 0, D12 = 2 (at the margin), D21 = 0.8
    # L = 0.5 * mean(1.44, 0) + 0.5 * mean(0, (2 - 0.8)^2) = 0.72
    value, d, grad = _value_and_grad("hadsell", "manhattan", sr, hr)
    assert value == pytest.approx(0.72)
    assert d == pytest.approx(0.6)
    # row 0: pull only, 0.5 * 0.5 * 2 * 1.2 * sign(sr0 - hr0) = 0.6 * (1, -1)
    # row 1: push from hr0 only, 0.5 * 0.5 * -2 * 1.2 * sign(sr1 - hr0) = -0.6 * (-1, 1)
    assert torch.allclose(grad, torch.tensor([[0.6, -0.6], [0.6, -0.6]]), atol=1e-6)


def test_hadsell_with_one_sample_is_half_the_pull_term():
    value, _, _ = _value_and_grad("hadsell", "manhattan", E1, E2)
    assert value == pytest.approx(2.0)


def test_unknown_form_is_rejected():
    with pytest.raises(MethodError, match="contrastive"):
        contrastive_loss(E1, E2, "triplet", "manhattan")


# ------------------------------------------------------------------ loss weights
def test_learnable_weights_stay_clipped_and_sum_to_one_after_adam_steps():
    weights = LossWeights("learnable")
    opt = torch.optim.Adam(weights.parameters(), lr=0.3)
    l_pixel, l_con = torch.tensor(0.01), torch.tensor(5.0)
    seen = []
    for _ in range(8):
        loss = weights.w_pixel * l_pixel + weights.w_con * l_con
        opt.zero_grad()
        loss.backward()
        opt.step()
        weights.project()
        wp, wc = weights.w_pixel.item(), weights.w_con.item()
        assert 0.0 <= wp <= 1.0 and 0.0 <= wc <= 1.0
        assert wp + wc == pytest.approx(1.0, abs=1e-7)
        seen.append(wp)
    # minimised with the loss, the weights drift to the smaller term and hit the clip
    assert seen[0] > 0.5 and seen[-1] == 1.0


def test_fixed_weights_have_no_parameters():
    weights = LossWeights({"pixel": 1.0, "con": 0.01})
    assert list(weights.parameters()) == []
    assert float(weights.w_pixel) == 1.0 and float(weights.w_con) == pytest.approx(0.01)
    with pytest.raises(MethodError, match="weights"):
        LossWeights({"pixel": 1.0})


def test_recipe_projects_weights_after_step():
    recipe = PeclRecipe(contrastive="hadsell", embedding=small_resnet_embedding())
    with torch.no_grad():
        recipe.weights.theta.fill_(1.7)
    recipe.after_step()
    assert recipe.weights.w_pixel.item() == 1.0 and recipe.weights.w_con.item() == 0.0


# ------------------------------------------------------------------ Siamese
def _one_step(recipe: PeclRecipe, net: nn.Module) -> dict:
    torch.manual_seed(1)
    batch = Batch(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16))
    recipe.train()
    loss, logs = recipe.loss(net(batch.lr), batch, 1, 1)
    loss.backward()
    return logs


def test_frozen_siamese_gets_no_gradient_while_the_sr_net_does():
    net = tiny_net()
    recipe = PeclRecipe(contrastive="hadsell", siamese="frozen", embedding=small_resnet_embedding())
    logs = _one_step(recipe, net)
    assert set(logs) >= {"w_pixel", "w_con", "l_pixel", "l_con", "D"}
    assert all(p.grad is None for p in recipe.siamese.parameters())
    assert all(p.grad is not None for p in net.parameters())
    assert not recipe.siamese.training  # frozen: batch-norm statistics stay fixed
    assert recipe.weights.theta.grad is not None
    assert all(id(p) not in {id(q) for q in recipe.siamese.parameters()} for p in recipe.generator_parameters())


def test_trainable_siamese_gets_gradient():
    recipe = PeclRecipe(contrastive="hadsell", siamese="trainable", embedding=small_resnet_embedding())
    _one_step(recipe, tiny_net())
    assert all(p.grad is not None for p in recipe.siamese.parameters())


def test_pull_forces_a_frozen_siamese_and_says_so():
    recipe = PeclRecipe(contrastive="pull", siamese="trainable", embedding=small_resnet_embedding())
    facts = recipe.describe()
    assert facts["siamese"] == "frozen" and "collapse" in facts["siamese_note"]
    _one_step(recipe, tiny_net())
    assert all(p.grad is None for p in recipe.siamese.parameters())


def test_embeddings_are_l2_normalised_with_the_chosen_size():
    net, facts = build_embedding("scratch", 256)
    with torch.no_grad():
        e = net.eval()(torch.rand(3, 3, 32, 32))
    assert e.shape == (3, 256)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert facts["siamese_init"] == "scratch"
    with pytest.raises(MethodError, match="embedding_dim"):
        build_embedding("scratch", 100)


def test_a_few_training_steps_lower_the_loss():
    from lpsr.data.patches import PatchSampler
    from lpsr.data.synthetic import make_synthetic

    torch.manual_seed(0)
    plates = make_synthetic(4, 0, 0, seed=3).train
    batch = PatchSampler(plates, 2, 16, seed=0).sample(4)
    net = tiny_net(2)
    recipe = PeclRecipe(contrastive="hadsell", embedding_dim=64, siamese_init="scratch", weights={"pixel": 1.0, "con": 0.05})
    opt = torch.optim.Adam(list(net.parameters()) + recipe.generator_parameters(), lr=2e-3)
    losses = []
    for it in range(8):
        recipe.train()
        loss, _ = recipe.loss(net(batch.lr), batch, it, 8)
        opt.zero_grad()
        loss.backward()
        opt.step()
        recipe.after_step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


# ------------------------------------------------------------------ initialisations
@pytest.fixture
def torchvision_resnet18_file(tmp_path):
    """A state dict in torchvision's resnet18 format (1000-way FC), written by the test."""
    from torchvision.models import resnet18

    torch.manual_seed(123)
    model = resnet18(weights=None)
    path = tmp_path / IMAGENET_FILE
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_imagenet_init_loads_a_torchvision_state_dict(torchvision_resnet18_file):
    path, state = torchvision_resnet18_file
    net, facts = build_embedding("imagenet", 128, weights=str(path))
    assert torch.equal(net.resnet.conv1.weight, state["conv1.weight"])
    assert torch.equal(net.resnet.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert net.resnet.fc.out_features == 128
    assert facts["siamese_init"] == "imagenet" and "head random" in facts["siamese_loaded"]


def test_missing_imagenet_file_error_names_the_file_and_the_key(tmp_path):
    missing = tmp_path / "nowhere" / IMAGENET_FILE
    with pytest.raises(MethodError) as err:
        build_embedding("imagenet", 128, weights=str(missing))
    assert str(missing) in str(err.value) and "siamese_weights" in str(err.value)


def test_missing_imagenet_in_hub_cache_names_the_hub_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MethodError, match=f"{tmp_path}/checkpoints/{IMAGENET_FILE}.*siamese_weights"):
        build_embedding("imagenet", 128)


def test_not_a_resnet_state_dict_is_rejected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(MethodError, match="not a ResNet-18 state dict"):
        build_embedding(f"file:{path}", 128)


def test_file_init_round_trips_a_saved_embedding(tmp_path):
    first = small_resnet_embedding(64).eval()
    path = tmp_path / "emb.pth"
    torch.save(first.state_dict(), path)
    second, facts = build_embedding(f"file:{path}", 64)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(first(x), second.eval()(x))
    assert "64-d head" in facts["siamese_loaded"]


def test_auto_picks_imagenet_when_present_else_plate_ocr_else_scratch(tmp_path, monkeypatch, torchvision_resnet18_file):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(siamese_mod, "plate_ocr_available", lambda: (True, "ok"))
    assert resolve_init("auto")[0] == "plate-ocr"
    monkeypatch.setattr(siamese_mod, "plate_ocr_available", lambda: (False, "no onnx"))
    used, why = resolve_init("auto")
    assert used == "scratch" and "no onnx" in why and IMAGENET_FILE in why
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torchvision_resnet18_file[0].rename(tmp_path / "hub" / "checkpoints" / IMAGENET_FILE)
    used, why = resolve_init("auto")
    assert used == "imagenet" and "found" in why
    net, facts = build_embedding("auto", 64)
    assert facts["siamese_init"] == "imagenet"


def test_plate_ocr_embedding_is_normalised_and_differentiable():
    ok, why = siamese_mod.plate_ocr_available()
    if not ok:
        pytest.skip(f"plate recogniser not convertible here: {why}")
    net, facts = build_embedding("plate-ocr", 64)
    net.train()
    assert not net.backbone.training
    assert not any(p.requires_grad for p in net.backbone.parameters())  # the recogniser stays as trained
    assert all(p.requires_grad for p in net.head.parameters())
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    e = net(x)
    assert e.shape == (2, 64)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    e[:, 0].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ------------------------------------------------------------------ methods and the grid
def test_methods_describe_form_and_init():
    pecl = registry.get("pecl").create(8)
    facts = pecl.describe()
    assert facts["contrastive"] in ("paper-eq17", "pull", "hadsell")
    assert facts["siamese_init"] in ("imagenet", "plate-ocr", "scratch")
    assert facts["siamese_init_reason"]
    assert registry.get("mse").create(8).describe()["loss"] == "mse"
    assert registry.get("pecl").cls.order == 70 and registry.get("mse").cls.order == 71


def test_ablation_group_is_the_papers_grid():
    members = registry.resolve("pecl-ablation")
    assert "mse" in members
    grid_methods = [registry.get(n).create(8) for n in members if n.startswith("pecl-d")]
    grid = {(m.config.get("embedding_dim"), m.config.get("distance")) for m in grid_methods}
    assert grid == {(d, dist) for d in (64, 128, 256, 512) for dist in ("manhattan", "euclidean")}
    forms = {registry.get(n).create(8).describe()["contrastive"] for n in members if n.startswith("pecl")}
    assert forms == {"paper-eq17", "pull", "hadsell"}
    # the ablation group shares only the floor, the MSE baseline and the intended form with `all`
    assert set(members) & set(registry.groups()["all"]) == {"bicubic", "mse", "pecl-pull"}
    assert {"mse-skip", "pecl-pull-skip"} <= set(members)


def test_bad_settings_give_one_line_errors():
    with pytest.raises(MethodError, match="unknown key"):
        registry.get("pecl").create(8, {"distnace": "euclidean"})
    with pytest.raises(MethodError, match=r"net\.width: unknown key"):
        registry.get("pecl").create(8, {"net": {"width": 3}})
    with pytest.raises(MethodError, match="power-of-two"):
        registry.get("pecl").create(3)
    with pytest.raises(MethodError, match="siamese_init"):
        PeclRecipe(siamese_init="vgg")


# ------------------------------------------------------------------ as printed vs as meant
def test_paper_eq17_is_exactly_zero_for_manhattan_unit_vectors_in_128_d():
    """D between 128-d unit vectors under L1 is ~11-12 >> m = 2: Eq. 17 is inert."""
    g = torch.Generator().manual_seed(0)
    sr = torch.nn.functional.normalize(torch.randn(64, 128, generator=g), dim=1)
    hr = torch.nn.functional.normalize(torch.randn(64, 128, generator=g), dim=1)
    value, d = contrastive_loss(sr, hr, "paper-eq17", "manhattan", margin=2.0)
    assert 10.0 < d.item() < 13.0
    assert value.item() == 0.0
    # even a close pair (cosine 0.9) stays far beyond the margin
    close = torch.nn.functional.normalize(hr + 0.5 * torch.nn.functional.normalize(torch.randn(64, 128, generator=g), dim=1), dim=1)
    _, d_close = contrastive_loss(close, hr, "paper-eq17", "manhattan")
    assert d_close.item() > 2.0


def test_pecl_pull_is_in_all_with_a_frozen_plate_siamese_and_fixed_weights():
    assert "pecl-pull" in registry.groups()["all"]
    m = registry.get("pecl-pull").create(8)
    s = m.settings
    assert (s.contrastive, s.siamese, s.siamese_init, s.distance) == ("pull", "frozen", "plate-ocr", "manhattan")
    assert s.weights.pixel == 1.0 and 0 < s.weights.con < 1e-3
    facts = m.describe()
    assert facts["siamese"] == "frozen" and facts["ocr_seen_in_training"] == ["plate"]


def test_pecl_pull_trains_and_its_siamese_stays_frozen():
    ok, why = siamese_mod.plate_ocr_available()
    if not ok:
        pytest.skip(f"plate recogniser not convertible here: {why}")
    m = registry.get("pecl-pull").create(2, {"net": {"channels": 16, "blocks": 1, "growth": 8, "convs": 2, "reduction": 4}})
    torch.manual_seed(0)
    net = m.build()
    recipe = m.recipe(net)
    assert recipe.generator_parameters() == []  # fixed weights, frozen Siamese: nothing to learn there
    before = {k: v.clone() for k, v in recipe.siamese.state_dict().items()}
    from lpsr.data.patches import PatchSampler
    from lpsr.data.synthetic import make_synthetic

    batch = PatchSampler(make_synthetic(4, 0, 0, seed=3).train, 2, 32, seed=0).sample(4)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for it in range(6):
        net.train()
        recipe.train()
        assert not recipe.siamese.training and not recipe.siamese.net.training
        loss, logs = recipe.loss(net(batch.lr), batch, it, 6)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in recipe.siamese.parameters())
        opt.step()
        recipe.after_step()
        losses.append(loss.item())
        assert logs["l_con"] > 0 and logs["w_con"] == pytest.approx(s_con(m))
    assert losses[-1] < losses[0]
    after = recipe.siamese.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics unchanged


def s_con(method) -> float:
    return float(method.settings.weights.con)


def test_global_residual_is_opt_in_and_adds_the_bicubic_upsampling():
    from lpsr.models.bicubic import upsample

    paper = PeclNet(2, channels=16, blocks=1, growth=8, convs=2, reduction=4)
    skip = PeclNet(2, channels=16, blocks=1, growth=8, convs=2, reduction=4, global_residual="bicubic")
    assert count_parameters(paper) == count_parameters(skip)
    skip.load_state_dict(paper.state_dict())
    lr = torch.rand(1, 3, 8, 24)
    with torch.no_grad():
        assert torch.allclose(skip(lr), paper(lr) + upsample(lr, 2, "pil"), atol=1e-6)
    assert registry.get("pecl").create(8).settings.net.global_residual == "none"  # the paper's
    assert registry.get("mse-skip").create(8).describe()["global_residual"] == "bicubic"
    assert registry.get("pecl-pull-skip").create(8).settings.net.global_residual == "bicubic"
    with pytest.raises(MethodError, match="global_residual"):
        registry.get("mse").create(8, {"net": {"global_residual": "bilinear"}})
