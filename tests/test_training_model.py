"""OAMNet: output shapes and ranges, the attention ablation, backbone weight loading."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet50

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
    with pytest.raises(BackboneWeightsError, match="do not fit torchvision's ResNet-50"):
        OAMNet(num_races=5, backbone_weights=str(wrong))


def test_imagenet_weights_that_cannot_be_fetched_raise_instead_of_falling_back(monkeypatch) -> None:
    import urllib.error

    import torchvision.models._api as weights_api

    def offline(url: str, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(weights_api, "load_state_dict_from_url", offline)  # the network, not the model
    with pytest.raises(BackboneWeightsError, match="backbone_weights: none"):
        OAMNet(num_races=5, backbone_weights="imagenet")
