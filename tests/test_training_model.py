"""OAMNet: output shapes and ranges, the attention ablation, backbone weight loading."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import mobilenet_v3_small, resnet18, resnet50

from synthface.taxonomy import races
from synthface.training.model import BackboneWeightsError, OAMNet


@pytest.fixture(scope="module")
def model() -> OAMNet:
    torch.manual_seed(0)
    return OAMNet(num_races=len(races("utkface5"))).eval()


def test_outputs_have_head_sizes_and_attention_in_unit_range(model: OAMNet) -> None:
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 64))
    assert out["age"].shape == (3,)
    assert out["gender"].shape == (3, 2)
    assert out["race"].shape == (3, 5)
    assert out["mask"].shape == (3, 2)
    attention = out["attention"]
    assert attention.shape == (3, 1, 2, 2)  # 64 px / stride 32
    assert float(attention.min()) >= 0.0 and float(attention.max()) <= 1.0
    # Age is bounded: always a valid number of years.
    assert bool(((out["age"] >= 0) & (out["age"] <= model.age_max)).all())


def test_race_head_follows_the_taxonomy() -> None:
    fairface = OAMNet(num_races=len(races("fairface7")), head_dropout=0.0).eval()
    with torch.no_grad():
        assert fairface(torch.randn(2, 3, 64, 64))["race"].shape == (2, 7)


def test_attention_off_removes_the_module() -> None:
    ablation = OAMNet(num_races=5, attention=False).eval()
    assert ablation.attention is None
    assert not any("attention" in name for name in ablation.state_dict())
    with_attention = OAMNet(num_races=5, attention=True)
    assert any(name.startswith("attention.") for name in with_attention.state_dict())
    with torch.no_grad():
        out = ablation(torch.randn(2, 3, 64, 64))
    assert out["attention"] is None
    assert out["gender"].shape == (2, 2)


def test_init_age_bias_starts_at_the_mean_age(model: OAMNet) -> None:
    fresh = OAMNet(num_races=5).eval()
    fresh.heads["age"][-1].weight.data.zero_()  # isolate the bias
    fresh.init_age_bias(37.0)
    with torch.no_grad():
        ages = fresh(torch.randn(2, 3, 64, 64))["age"]
    assert torch.allclose(ages, torch.full((2,), 37.0), atol=1e-3)


def test_backbone_weights_from_a_local_file(tmp_path) -> None:
    reference = resnet50(weights=None)
    torch.nn.init.constant_(reference.conv1.weight, 0.125)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    loaded = OAMNet(num_races=5, backbone_weights=str(path))
    assert torch.equal(loaded.trunk.conv1.weight, reference.conv1.weight)
    assert torch.equal(loaded.trunk.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)


def test_backbone_weights_errors_are_actionable(tmp_path) -> None:
    with pytest.raises(BackboneWeightsError, match="no such file"):
        OAMNet(num_races=5, backbone_weights=str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(BackboneWeightsError, match="do not fit torchvision's resnet50"):
        OAMNet(num_races=5, backbone_weights=str(wrong))


def test_imagenet_weights_that_cannot_be_fetched_raise_instead_of_falling_back(monkeypatch) -> None:
    import urllib.error

    import torchvision.models._api as weights_api

    def offline(url: str, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(weights_api, "load_state_dict_from_url", offline)  # the network, not the model
    with pytest.raises(BackboneWeightsError, match="backbone_weights: none"):
        OAMNet(num_races=5, backbone_weights="imagenet")


@pytest.mark.parametrize("name, channels", [("resnet18", 512), ("mobilenet_v3_small", 576)])
def test_light_backbones_keep_attention_and_heads(name: str, channels: int) -> None:
    model = OAMNet(num_races=5, backbone=name, mask_classes=3).eval()
    assert model.heads["gender"][0].in_features == channels
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out["attention"].shape == (2, 1, 2, 2) and out["mask"].shape == (2, 3) and out["race"].shape == (2, 5)


def test_light_backbone_weights_load_from_torchvision_and_prefixed_files(tmp_path) -> None:
    reference = mobilenet_v3_small(weights=None)
    torch.nn.init.constant_(reference.features[0][0].weight, 0.25)
    path = tmp_path / "mobilenet.pth"
    torch.save(reference.state_dict(), path)
    loaded = OAMNet(num_races=5, backbone="mobilenet_v3_small", backbone_weights=str(path))
    assert torch.equal(loaded.trunk[0][0].weight, reference.features[0][0].weight)
    # timm ResNets share torchvision's names; DDP-saved files carry a "module." prefix.
    reference = resnet18(weights=None)
    torch.nn.init.constant_(reference.layer4[1].conv2.weight, 0.5)
    prefixed = tmp_path / "resnet18_ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, prefixed)
    loaded = OAMNet(num_races=5, backbone="resnet18", backbone_weights=str(prefixed))
    assert torch.equal(loaded.trunk.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    # A file of another backbone is refused, never half-loaded.
    with pytest.raises(BackboneWeightsError, match="do not fit torchvision's resnet18"):
        OAMNet(num_races=5, backbone="resnet18", backbone_weights=str(path))


def test_offline_imagenet_error_names_the_file_to_fetch(monkeypatch) -> None:
    import urllib.error

    import torchvision.models._api as weights_api

    def offline(url: str, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(weights_api, "load_state_dict_from_url", offline)
    with pytest.raises(BackboneWeightsError, match=r"resnet18-f37072fd\.pth.*model\.backbone_weights: /path/to/"):
        OAMNet(num_races=5, backbone="resnet18", backbone_weights="imagenet")


def test_gender_aware_age_reads_the_gender_probabilities() -> None:
    torch.manual_seed(0)
    model = OAMNet(num_races=5, backbone="resnet18", gender_aware_age=True, head_dropout=0.0).eval()
    assert model.heads["age"][0].in_features == 512 + 2
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)["age"]
        model.heads["gender"][-1].bias.copy_(torch.tensor([20.0, -20.0]))  # only the gender head changes
        after = model(x)["age"]
    assert not torch.allclose(before, after)  # the age output depends on the injected gender probabilities
