"""Shapes and structure of the models added for "Beyond the classics"."""

import pytest
import torch
import torch.nn as nn

from lessonlib.models import DigitCNN, ResidualMLP, check_batch, first_layer, mlp, norm_mlp


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


# --- does a batch fit the model? -------------------------------------------------------------

def conv_first():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                         nn.Linear(8 * 6 * 6, 10))


def embedding_first():
    return nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(4 * 5, 2))


def test_first_layer_is_the_one_that_receives_the_batch():
    assert first_layer(DigitCNN())[0] == "conv1"
    assert first_layer(ResidualMLP())[0] == "stem"
    assert first_layer(nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))[0] == "1"
    linear = nn.Linear(3, 2)
    assert first_layer(linear) == ("", linear)
    assert first_layer(nn.ReLU()) is None


def test_a_batch_that_fits_passes():
    check_batch(mlp([64, 8, 10]), torch.randn(5, 64))
    check_batch(DigitCNN(), torch.randn(5, 64))                 # DigitCNN reshapes the flat rows itself
    check_batch(conv_first(), torch.randn(5, 3, 8, 8))
    check_batch(embedding_first(), torch.randint(0, 10, (5, 5)))
    check_batch(nn.LSTM(4, 6, batch_first=True), torch.randn(5, 7, 4))


def test_a_linear_first_layer_names_the_features():
    with pytest.raises(ValueError, match=r"The model expects 2 input features \(its first layer is Linear"
                                         r"\(in_features=2, .*\) but the digits data has 64\."):
        check_batch(mlp([2, 8, 2]), torch.randn(5, 64), "the digits data")


@pytest.mark.parametrize("model, x, message", [
    (conv_first(), torch.randn(5, 64),
     r"The digits data \(shape \(5, 64\), torch.float32\) does not fit the model: its first layer '0' is "
     r"Conv2d\(3, 8, .*\) and expects 3 input channels, a batch of shape \(examples, 3, size, size\)\. "
     r"PyTorch says: "),
    (conv_first(), torch.randn(5, 1, 8, 8), "its first layer '0' is Conv2d.* expects 3 input channels"),
    (embedding_first(), torch.randn(5, 5),
     r"its first layer '0' is Embedding\(10, 4\) and expects integer ids in \[0, 10\), a batch of dtype "
     r"torch.long\. PyTorch says: "),
    (embedding_first(), torch.arange(25).reshape(5, 5),       # the ids of the first two examples are in range
     r"The digits data has ids from 0 to 24 but the model's first layer '0' is Embedding\(10, 4\) and expects "
     r"integer ids in \[0, 10\)"),
    (embedding_first(), torch.randint(0, 10, (5, 4)),
     r"its first layer '0' \(Embedding\(10, 4\)\) takes it, but a later layer does not\. PyTorch says: "),
    (nn.LSTM(4, 6, batch_first=True), torch.randn(5, 7, 3),
     r"its first layer '' is LSTM\(4, 6, batch_first=True\) and expects 4 features per step, a batch of shape "
     r"\(examples, steps, 4\)"),
], ids=["conv-flat", "conv-channels", "embedding-floats", "embedding-ids", "embedding-later-layer", "lstm"])
def test_a_batch_that_does_not_fit_names_the_first_layer(model, x, message):
    with pytest.raises(ValueError, match=message):
        check_batch(model, x, "the digits data")


def test_the_check_changes_nothing():
    model = conv_first()
    model[3].eval()                                      # Dropout off; BatchNorm in training mode
    fits, does_not_fit = torch.randn(5, 3, 8, 8), torch.randn(5, 64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    check_batch(model, fits)
    with pytest.raises(ValueError):
        check_batch(model, does_not_fit)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # BatchNorm statistics too
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and model[1].training and not model[3].training         # each flag restored
