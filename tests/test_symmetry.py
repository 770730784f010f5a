"""Zero and constant initializations fail as the chapter says, and the measurements say so."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp, train
from lessonlib.symmetry import COPY_TOLERANCE, EpochLog, describe_spread, record_pass, unit_spread, unit_spreads


@pytest.fixture(scope="module")
def data():
    return digits()


# ---------------------------------------------------------------------------------------------
# the dead ReLU network


def test_zero_init_kills_every_hidden_signal_and_gradient(data):
    model = init_model(DigitNN(), "zeros", bias="same", seed=42)
    record = record_pass(model, data.X_train, data.y_train)
    m = record.max_abs()
    assert record.names == ["fc1", "fc2", "fc3"]
    for layer in ("fc1", "fc2"):
        assert m[f"{layer} z"] == 0 and m[f"{layer} a"] == 0
        assert m[f"{layer}.weight grad"] == 0 and m[f"{layer}.bias grad"] == 0
    assert m["fc3 z"] == 0 and m["fc3.weight grad"] == 0
    # the only gradient: softmax(0) - class frequencies = 1/10 - p_k
    freq = torch.bincount(data.y_train, minlength=10).double() / len(data.y_train)
    assert torch.allclose(record.bias_grads[2].double(), 0.1 - freq, atol=1e-6)
    assert m["fc3.bias grad"] > 0


def test_zero_init_stays_dead_and_predicts_one_class(data):
    model = init_model(DigitNN(), "zeros", bias="same", seed=42)
    log = EpochLog(lambda m: record_pass(m, data.X_train, data.y_train).max_abs())
    history = train(model, data, epochs=20, on_epoch=log)
    assert log.epochs == list(range(21))
    for key in log.keys():
        if key != "fc3.bias grad" and key != "fc3 z":
            assert (log[key] == 0).all(), key
    with torch.no_grad():
        scores = model(data.X_test)
    assert (scores == scores[0]).all()
    guessed = int(scores[0].argmax())
    assert history.final_test_acc == pytest.approx(float((data.y_test == guessed).double().mean()))


def test_recording_changes_nothing(data):
    """A pass recorded inside training leaves the parameters, the gradients and the run unchanged."""
    runs = []
    for on_epoch in (None, EpochLog(lambda m: record_pass(m, data.X_train, data.y_train).max_abs())):
        model = init_model(DigitNN(), "kaiming_normal", seed=0)
        runs.append((train(model, data, epochs=5, on_epoch=on_epoch), model))
    (h0, m0), (h1, m1) = runs
    assert h0.loss == h1.loss and h0.test_acc == h1.test_acc
    assert all(torch.equal(a, b) for a, b in zip(m0.parameters(), m1.parameters()))
    model = init_model(mlp([4, 3, 2]), "kaiming_normal", seed=0)
    before = model[0].weight.grad = torch.ones_like(model[0].weight)
    record_pass(model, torch.randn(5, 4), torch.zeros(5, dtype=torch.long))
    assert model[0].weight.grad is before and model[2].weight.grad is None
    assert not any(layer._forward_hooks for layer in model)


def test_pass_records_what_backprop_says(data):
    model = init_model(mlp([64, 16, 8, 10], "tanh"), "xavier_normal", seed=1)
    x, y = data.X_train[:50], data.y_train[:50]
    record = record_pass(model, x, y)
    assert record.names == ["0", "2", "4"]
    assert torch.equal(record.activations[0], torch.tanh(record.pre_activations[0]))
    assert record.activations[2] is None
    # dL/dW = delta a^T, checked against autograd on a fresh copy
    loss = F.cross_entropy(model(x), y)
    gw = torch.autograd.grad(loss, model[2].weight)[0]
    assert torch.allclose(record.weight_grads[1], gw)
    assert record.loss == pytest.approx(loss.item())
    table = record.table().splitlines()
    assert table[0].split() == ["layer", "max|z|", "max|a|", "max|dL/dW|", "max|dL/db|"]
    assert table[3].split()[2] == "-"  # the output layer has no activation


# ---------------------------------------------------------------------------------------------
# symmetric units


@pytest.fixture
def threads():
    """Run with a given number of torch threads, restoring the setting afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def sigmoid_spreads(data, scheme, epochs, bias="same"):
    model = init_model(mlp([64, 32, 16, 10], "sigmoid"), scheme, bias=bias, seed=0)
    log = EpochLog(lambda m: unit_spreads(m, data.X_train, relative=True))
    history = train(model, data, epochs=epochs, on_epoch=log)
    return model, history, log


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("scheme", [make_scheme("zeros"), make_scheme("constant", value=0.1)])
def test_constant_init_keeps_sigmoid_units_copies(data, scheme, n_threads, threads):
    """Exactly in exact arithmetic; in float32 up to the rounding that the matrix library's
    order of sums brings (it depends on the thread count and the CPU), which stays far below
    the tolerance."""
    threads(n_threads)
    model, history, log = sigmoid_spreads(data, scheme, epochs=30)
    assert sorted(log.keys()) == sorted(f"{layer} {what}" for layer in ("0", "2")
                                        for what in ("incoming", "bias", "outgoing", "activations"))
    for key in log.keys():
        assert (log[key] < COPY_TOLERANCE / 100).all(), key
    # it did train: the loss fell and the weights moved away from where they started
    assert history.loss[-1] < history.loss[0]
    assert float(model[0].weight.detach().abs().max()) != abs(scheme.params.get("value", 0.0))


def test_random_init_breaks_the_symmetry(data):
    _, _, log = sigmoid_spreads(data, make_scheme("xavier_normal"), epochs=10, bias="zeros")
    for key in log.keys():
        if key.endswith("bias"):
            assert log[key][0] == 0 and log[key][-1] > 0, key  # biases start at 0, then differ
        else:
            assert (log[key] > 10 * COPY_TOLERANCE).all(), key


def test_unit_spread_on_hand_made_tensors():
    W = torch.tensor([[1.0, 2.0, 3.0],
                      [1.0, 2.5, 3.0],
                      [0.0, 2.0, 3.0]])
    assert unit_spread(W, 0) == 1.0          # rows 0 and 2 differ by 1 in column 0
    assert unit_spread(W, 1) == 3.0          # columns 0 and 2 differ by 3 in row 2
    assert unit_spread(W, -1) == 3.0
    assert unit_spread(torch.full((4, 5), 0.3), 0) == 0.0
    assert unit_spread(torch.tensor([2.0, -1.0, 0.5]), 0) == 3.0
    # float64: a difference of one float32 ulp is not lost
    tiny = torch.tensor([1.0, float(np.nextafter(np.float32(1), np.float32(2)))])
    assert unit_spread(tiny) > 0
    # relative: as a fraction of the largest magnitude; 0 for zeros
    assert unit_spread(W, 0, relative=True) == 1.0 / 3.0
    assert unit_spread(torch.tensor([2.0, -1.0, 0.5]), 0, relative=True) == 1.5
    assert unit_spread(torch.zeros(3, 2), 1, relative=True) == 0.0
    assert unit_spread(100 * W, 1, relative=True) == unit_spread(W, 1, relative=True)


def test_describe_spread_hides_only_what_is_rounding():
    assert describe_spread(0.0) == describe_spread(COPY_TOLERANCE / 2) == f"< {COPY_TOLERANCE:g}"
    assert describe_spread(COPY_TOLERANCE) == f"{COPY_TOLERANCE:.2g}"
    assert describe_spread(1.2345) == "1.2"


def test_unit_spreads_on_a_hand_made_network():
    model = mlp([2, 3, 2], "relu")
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 2.0]]))
        model[0].bias.copy_(torch.tensor([0.0, 0.5, 0.0]))
        model[2].weight.copy_(torch.tensor([[1.0, 1.0, 4.0], [0.0, 0.0, 0.0]]))
    spreads = unit_spreads(model, torch.tensor([[1.0, 1.0]]))
    assert spreads == {"0 incoming": 2.0, "0 bias": 0.5, "0 outgoing": 3.0, "0 activations": 2.0}
    relative = unit_spreads(model, torch.tensor([[1.0, 1.0]]), relative=True)
    assert relative == {"0 incoming": 1.0, "0 bias": 1.0, "0 outgoing": 0.75, "0 activations": 2.0 / 3.0}


def test_bad_input_raises():
    with pytest.raises(ValueError, match="needs a tensor"):
        unit_spread([[1.0, 2.0]])
    with pytest.raises(ValueError, match="'dim' parameter must be an int in the range"):
        unit_spread(torch.zeros(3, 2), 2)
    with pytest.raises(ValueError, match="at least 2 units"):
        unit_spread(torch.zeros(1, 5), 0)
    with pytest.raises(ValueError, match="finite"):
        unit_spread(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="'relative' parameter must be True or False"):
        unit_spread(torch.zeros(3, 2), 0, "yes")
    with pytest.raises(ValueError, match="no hidden layer"):
        unit_spreads(mlp([4, 3]), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="no layer with a weight matrix"):
        unit_spreads(nn.ReLU(), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="batch dimension first"):
        unit_spreads(mlp([4, 3, 2]), torch.zeros(4))
    with pytest.raises(ValueError, match="one label per input"):
        record_pass(mlp([4, 3, 2]), torch.zeros(5, 4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="callable"):
        EpochLog({"a": 1})
    log = EpochLog(lambda m: {})
    with pytest.raises(ValueError, match="non-empty dict"):
        log(0, None)
    calls = iter([{"a": 1.0}, {"b": 2.0}])
    log = EpochLog(lambda m: next(calls))
    log(0, None)
    with pytest.raises(ValueError, match="returned the keys"):
        log(1, None)
    with pytest.raises(KeyError, match="Measured"):
        log["b"]
