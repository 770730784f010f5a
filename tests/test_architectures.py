"""The models, data, initializations and multi-seed trainer of chapter 11 ("Diagnose your own network")."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lessonlib.architectures import (NormResidualMLP, RecurrentClassifier, TinyTransformer, class_priors,
                                     first_token_task, gpt2_init, imbalanced_blobs, lookup_task, lstm_init,
                                     prior_bias, prior_entropy, steps_to, stream_std, train_seeds,
                                     zero_init_residual)
from lessonlib.models import mlp
from lessonlib.seed import set_seed


# ---------------------------------------------------------------------------------------------
# GPT-2


def test_gpt2_init_stds_biases_and_gains():
    n_layers = 4
    model = TinyTransformer(vocab=50, length=40, d_model=64, n_heads=4, n_layers=n_layers, d_ff=256)
    gpt2_init(model, seed=0)
    residual = {id(p) for layer in model.layers
                for p in (layer.self_attn.out_proj.weight, layer.linear2.weight)}
    scaled = 0.02 / math.sqrt(2 * n_layers)
    checked = 0
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name
        elif name.startswith("norm") or ".norm" in name:
            assert torch.equal(p, torch.ones_like(p)), name
        else:
            expected = scaled if id(p) in residual else 0.02
            assert float(p.detach().std()) == pytest.approx(expected, rel=0.06), name
            assert abs(float(p.detach().mean())) < 4 * expected / math.sqrt(p.numel()), name
            checked += 1
    assert checked == 3 + 4 * n_layers      # tok, pos, head; in_proj, out_proj, linear1, linear2 per layer
    # the pooled residual projections, 4 * 64*64 + 4 * 256*64 weights: a tight check of the 1/sqrt(2N)
    pooled = torch.cat([layer.linear2.weight.detach().flatten() for layer in model.layers]
                       + [layer.self_attn.out_proj.weight.detach().flatten() for layer in model.layers])
    assert float(pooled.std()) == pytest.approx(scaled, rel=0.02)


def test_gpt2_init_n_layers_override_and_seed():
    a = gpt2_init(TinyTransformer(d_model=64, d_ff=256), n_layers=32, seed=3)
    b = gpt2_init(TinyTransformer(d_model=64, d_ff=256), n_layers=32, seed=3)
    pooled = torch.cat([layer.linear2.weight.detach().flatten() for layer in a.layers])
    assert float(pooled.std()) == pytest.approx(0.02 / 8, rel=0.05)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_transformer_layers_start_independent_and_stream_shapes():
    torch.manual_seed(0)
    model = TinyTransformer()
    first, second = model.layers[0].linear1.weight, model.layers[1].linear1.weight
    assert not torch.equal(first, second)      # nn.TransformerEncoder would have cloned one layer
    x = lookup_task(n_train=5, n_test=1).X_train
    out, stream = model(x, return_stream=True)
    assert out.shape == (5, 10) and out.dtype == torch.float64
    assert len(stream) == 5 and all(h.shape == (5, 8, 32) for h in stream)
    assert stream_std(model, x).shape == (5,)


def test_gpt2_init_bad_inputs():
    with pytest.raises(ValueError, match="nn.TransformerEncoderLayer"):
        gpt2_init(mlp([4, 8, 2]))
    with pytest.raises(ValueError, match="'std' parameter"):
        gpt2_init(TinyTransformer(), std=-0.02)
    with pytest.raises(ValueError, match="'n_layers' parameter"):
        gpt2_init(TinyTransformer(), n_layers=0)


# ---------------------------------------------------------------------------------------------
# LSTM


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lstm_init_orthogonal_xavier_and_forget_bias(dtype):
    lstm = nn.LSTM(10, 48, num_layers=2, dtype=dtype)
    lstm_init(lstm, seed=0)
    h = 48
    for layer in range(2):
        w_hh, w_ih = (getattr(lstm, f"weight_{k}_l{layer}").detach() for k in ("hh", "ih"))
        for gate in w_hh.split(h):
            assert torch.allclose(gate @ gate.T, torch.eye(h, dtype=dtype), atol=1e-5)
        bound = math.sqrt(6 / (w_ih.shape[1] + h))
        for gate in w_ih.split(h):
            assert float(gate.abs().max()) <= bound
            assert float(gate.std()) == pytest.approx(bound / math.sqrt(3), rel=0.15)
        b_ih, b_hh = (getattr(lstm, f"bias_{k}_l{layer}").detach() for k in ("ih", "hh"))
        expected = torch.zeros(4 * h, dtype=dtype)
        expected[h:2 * h] = 1.0                 # the forget gate, second of (i, f, g, o)
        assert torch.equal(b_ih, expected)
        assert torch.equal(b_hh, torch.zeros_like(b_hh))
        assert torch.equal(b_ih + b_hh, expected)   # the bias the gate sees


def test_lstm_init_finds_the_lstm_in_a_model_and_is_seeded():
    a, b = RecurrentClassifier(), RecurrentClassifier()
    lstm_init(a, forget_bias=2.0, seed=1)
    lstm_init(b, forget_bias=2.0, seed=1)
    assert torch.equal(a.lstm.weight_hh_l0, b.lstm.weight_hh_l0)
    assert float(a.lstm.bias_ih_l0.detach()[32:64].min()) == 2.0


def test_lstm_init_bad_inputs():
    with pytest.raises(TypeError, match="nn.LSTM.*GRU"):
        lstm_init(nn.GRU(4, 8))
    with pytest.raises(TypeError, match="nn.LSTM"):
        lstm_init("lstm")
    with pytest.raises(ValueError, match="bias=False"):
        lstm_init(nn.LSTM(4, 8, bias=False))
    with pytest.raises(ValueError, match="'forget_bias' parameter"):
        lstm_init(nn.LSTM(4, 8), forget_bias=float("nan"))


# ---------------------------------------------------------------------------------------------
# residual network


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_zero_init_residual_makes_every_block_the_identity(norm):
    torch.manual_seed(0)
    model = zero_init_residual(NormResidualMLP(n_blocks=6, norm=norm))
    x = torch.randn(32, 64, dtype=torch.float64)
    _, stream = model(x, return_stream=True)
    assert all(torch.equal(h, stream[0]) for h in stream)
    assert all(float(n.weight.detach().abs().max()) == 0.0 for n in model.branch_norms())


def test_default_stream_grows_with_depth_and_zero_init_keeps_it():
    torch.manual_seed(0)
    x = torch.randn(256, 64, dtype=torch.float64)
    default = stream_std(NormResidualMLP(n_blocks=16), x)
    # each BatchNorm'd branch adds variance about 1: Var(h_L) ~ Var(h_0) + L
    assert default[-1] ** 2 == pytest.approx(default[0] ** 2 + 16, rel=0.2)
    torch.manual_seed(0)
    fixed = stream_std(zero_init_residual(NormResidualMLP(n_blocks=16)), x)
    assert np.allclose(fixed, fixed[0], rtol=1e-12)


def test_stream_std_leaves_batchnorm_statistics_alone():
    model = NormResidualMLP(n_blocks=2)
    before = model.blocks[0][1].running_mean.clone()
    stream_std(model, torch.randn(16, 64, dtype=torch.float64) + 3)
    assert torch.equal(model.blocks[0][1].running_mean, before)


def test_residual_bad_inputs():
    with pytest.raises(TypeError, match="branch_norms"):
        zero_init_residual(mlp([4, 8, 2]))
    with pytest.raises(ValueError, match="'norm' parameter"):
        NormResidualMLP(norm="none")
    with pytest.raises(TypeError, match="return_stream"):
        stream_std(mlp([4, 8, 2]), torch.randn(3, 4))


# ---------------------------------------------------------------------------------------------
# output bias


def test_prior_bias_softmax_is_the_class_frequencies():
    targets = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    layer = prior_bias(nn.Linear(5, 3), targets)
    assert torch.allclose(F.softmax(layer.bias.double(), 0), torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64))
    assert torch.allclose(class_priors(targets), torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64))
    shifted = F.softmax(layer.bias.double() + 5.0, 0)              # any constant shift: same priors
    assert torch.allclose(shifted, torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64))


def test_prior_bias_initial_loss_is_the_entropy_with_zero_weights():
    data = imbalanced_blobs(n_train=3000, priors=(0.8, 0.15, 0.05))
    layer = nn.Linear(8, 3, dtype=torch.float64)
    nn.init.zeros_(layer.weight)
    prior_bias(layer, data.y_train)
    loss = F.cross_entropy(layer(data.X_train.double()), data.y_train).item()
    h = prior_entropy(data.y_train)
    assert loss == pytest.approx(h, abs=1e-12)
    assert h < math.log(3) - 0.4
    nn.init.zeros_(layer.bias)                      # a zero bias starts at ln C
    assert F.cross_entropy(layer(data.X_train.double()), data.y_train).item() == pytest.approx(math.log(3))


def test_prior_bias_bad_inputs():
    with pytest.raises(ValueError, match="class 3, outside the layer's 3 outputs"):
        prior_bias(nn.Linear(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"Class\(es\) \[1\] never occur"):
        prior_bias(nn.Linear(4, 3), torch.tensor([0, 2, 2]))
    with pytest.raises(ValueError, match="integer class labels"):
        prior_bias(nn.Linear(4, 2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        prior_bias(nn.Linear(4, 2), torch.tensor([-1, 0, 1]))
    with pytest.raises(TypeError, match="nn.Linear with a bias"):
        prior_bias(nn.Linear(4, 2, bias=False), torch.tensor([0, 1]))


# ---------------------------------------------------------------------------------------------
# data


@pytest.mark.parametrize("make", [lookup_task, first_token_task, imbalanced_blobs])
def test_data_deterministic_per_seed(make):
    a, b, c = make(seed=0), make(seed=0), make(seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.X_train, c.X_train)


def test_lookup_task_shapes_and_labels():
    data = lookup_task(n_train=300, n_test=100, length=6, vocab=9)
    assert data.X_train.shape == (300, 6) and data.X_test.shape == (100, 6)
    assert data.X_train.dtype == torch.long
    pointer = data.X_train[:, 0]
    assert int(pointer.min()) >= 1 and int(pointer.max()) <= 5
    assert torch.equal(data.y_train, data.X_train[torch.arange(300), pointer])


def test_first_token_task_shapes_and_labels():
    data = first_token_task(n_train=400, n_test=50, length=30, n_classes=3, n_noise=5)
    assert data.X_train.shape == (400, 30) and data.X_test.shape == (50, 30)
    assert torch.equal(data.y_train, data.X_train[:, 0]) and int(data.y_train.max()) == 2
    noise = data.X_train[:, 1:]
    assert int(noise.min()) == 3 and int(noise.max()) == 7


def test_imbalanced_blobs_priors_and_shapes():
    data = imbalanced_blobs(n_train=20000, n_test=100, priors=(0.9, 0.07, 0.03), n_features=5)
    assert data.X_train.shape == (20000, 5) and data.X_train.dtype == torch.float32
    assert np.allclose(class_priors(data.y_train).numpy(), [0.9, 0.07, 0.03], atol=0.01)


def test_data_bad_inputs():
    with pytest.raises(ValueError, match="'priors' parameter"):
        imbalanced_blobs(priors=(0.5, 0.6))
    with pytest.raises(ValueError, match="'length' parameter"):
        lookup_task(length=12, vocab=10)
    with pytest.raises(ValueError, match="'seed' parameter"):
        first_token_task(seed=-1)
    with pytest.raises(ValueError, match="'n_train' parameter"):
        lookup_task(n_train=0)


# ---------------------------------------------------------------------------------------------
# training over seeds


def test_train_seeds_is_deterministic_and_shaped():
    data = imbalanced_blobs(n_train=200, n_test=100)
    make = lambda: mlp([8, 16, 3]).double()
    calls = []

    def init(model):
        calls.append(model)
        prior_bias(model[-1], data.y_train)

    run = dict(steps=12, lr=0.01, batch_size=64, eval_every=5, eval_train=True)
    a = train_seeds(make, init, data, [0, 1, 2], **run)
    b = train_seeds(make, init, data, [0, 1, 2], **run)
    assert len(calls) == 6
    assert a["loss"].shape == (3, 12) and list(a["eval_steps"]) == [0, 5, 10, 12]
    assert a["test_acc"].shape == a["train_loss"].shape == (3, 4)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert not np.array_equal(a["loss"][0], a["loss"][1])          # seeds differ
    c = train_seeds(make, None, data, [0], steps=1, batch_size=None)
    assert c["loss"][0, 0] == pytest.approx(F.cross_entropy(
        _seeded(make, 0)(data.X_train.double()), data.y_train).item())      # full batch, default init


def _seeded(make, seed):
    set_seed(seed)
    return make()


def test_steps_to():
    results = {"eval_steps": np.array([0, 10, 20]), "test_acc": np.array([[0.1, 0.95, 0.99], [0.2, 0.3, 0.4]])}
    assert np.array_equal(steps_to(results, 0.9), [10, np.nan], equal_nan=True)


def test_train_seeds_bad_inputs():
    data = imbalanced_blobs(n_train=50, n_test=10)
    make = lambda: mlp([8, 4, 3])
    with pytest.raises(ValueError, match="distinct seeds"):
        train_seeds(make, None, data, [1, 1], steps=2)
    with pytest.raises(ValueError, match="'lr' parameter"):
        train_seeds(make, None, data, [0], steps=2, lr=0)
    with pytest.raises(ValueError, match="'steps' parameter"):
        train_seeds(make, None, data, [0], steps=0)
