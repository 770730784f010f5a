"""Shapes and structure of the models added for "Beyond the classics"."""

import pytest
import torch
import torch.nn as nn

from lessonlib.models import DigitCNN, ResidualMLP, norm_mlp


def test_residual_mlp_shapes_and_stream():
    net = ResidualMLP(64, 32, 5, 10)
    out, stream = net(torch.randn(7, 64), return_stream=True)
    assert out.shape == (7, 10)
    assert len(stream) == 6 and all(h.shape == (7, 32) for h in stream)
    assert len(net.branch_outputs()) == 5
    assert all(isinstance(layer, nn.Linear) for layer in net.branch_outputs())


def test_zero_branches_make_blocks_identities():
    net = ResidualMLP(64, 32, 4, 10)
    with torch.no_grad():
        for layer in net.branch_outputs():
            layer.weight.zero_()
            layer.bias.zero_()
        _, stream = net(torch.randn(5, 64), return_stream=True)
    assert all(torch.equal(h, stream[0]) for h in stream)


@pytest.mark.parametrize("bad", [{"width": 0}, {"n_blocks": -1}, {"in_features": 2.5}])
def test_residual_mlp_bad_sizes(bad):
    with pytest.raises(ValueError, match="must be a positive int"):
        ResidualMLP(**bad)


@pytest.mark.parametrize("norm, kind", [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm)])
def test_norm_mlp_places_a_norm_after_every_hidden_linear(norm, kind):
    net = norm_mlp([64, 32, 32, 10], norm)
    assert [type(m) for m in net] == [nn.Linear, kind, nn.ReLU, nn.Linear, kind, nn.ReLU, nn.Linear]
    assert net(torch.randn(6, 64)).shape == (6, 10)


def test_norm_mlp_none_and_bad_norm():
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) for m in norm_mlp([64, 32, 10], "none"))
    with pytest.raises(ValueError, match="'norm' parameter must be one of"):
        norm_mlp([64, 32, 10], "group")


def test_digit_cnn_shapes():
    net = DigitCNN()
    assert net(torch.randn(3, 64)).shape == (3, 10)
    with pytest.raises(ValueError, match="flat 8x8 images"):
        net(torch.randn(3, 1, 8, 8))
