"""The probe records what each layer receives, produces and sends back, and then cleans up."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lessonlib import DigitNN, init_model, mlp
from lessonlib.probes import Probe


def test_records_inputs_outputs_and_gradients_of_every_layer():
    model = init_model(mlp([4, 8, 8, 3], "relu"), "kaiming_normal", seed=0)
    x = torch.randn(16, 4)
    with Probe(model) as probe:
        loss = F.cross_entropy(model(x), torch.zeros(16, dtype=torch.long))
        loss.backward()
    assert probe.names == ["0", "2", "4"]
    assert torch.equal(probe.inputs[0], x)
    assert torch.equal(probe.inputs[1], torch.relu(probe.outputs[0]))
    # the gradient into the last layer's output is softmax - onehot, divided by the batch size
    expected = (torch.softmax(probe.outputs[2], 1) - F.one_hot(torch.zeros(16, dtype=torch.long), 3)) / 16
    assert torch.allclose(probe.grads[2], expected, atol=1e-6)
    # dL/dW = (dL/dz)^T a: the weight gradient is what the recorded tensors say it is
    assert torch.allclose(model[2].weight.grad, probe.grads[1].T @ probe.inputs[1], atol=1e-6)
    assert probe.stats("inputs", "std").shape == (3,)
    assert np.allclose(probe.stats("outputs", "second_moment"),
                       [float((probe.outputs[i].double() ** 2).mean()) for i in range(3)])


def test_works_with_functional_activations_and_removes_its_hooks():
    model = DigitNN()
    with Probe(model) as probe:
        model(torch.randn(5, 64))
    assert probe.names == ["fc1", "fc2", "fc3"]
    assert (probe.inputs[1] >= 0).all()  # fc2 receives relu(fc1)
    assert not model.fc1._forward_hooks
    before = dict(probe.inputs)
    model(torch.randn(5, 64))
    assert all(torch.equal(before[i], probe.inputs[i]) for i in before)


def test_clear_errors():
    with pytest.raises(ValueError, match="no layer with a weight matrix"):
        Probe(nn.ReLU())
    model = mlp([4, 3])
    with Probe(model) as probe:
        pass
    for read in (lambda: probe.stats("inputs"), lambda: probe.stats("grads", "mean"), probe.dead_units,
                 lambda: probe.saturation("tanh")):
        with pytest.raises(ValueError, match=r"Nothing was recorded yet. Run a forward pass through the model "
                                             r"inside the with block first, `with Probe\(model\) as probe: "
                                             r"model\(x\)`"):
            read()
    with Probe(model) as probe:
        model(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"No grads were recorded for 1 of 1 layers \(0\). Call loss.backward"):
        probe.stats("grads")
    with pytest.raises(ValueError, match="'what' must be"):
        probe.stats("weights")
    with pytest.raises(ValueError, match="'statistic' must be one of"):
        probe.stats("inputs", "var")
    with pytest.raises(ValueError, match="no weight gradient yet"):
        probe.weight_grad_stats()


def test_saturated_fraction_on_hand_built_cases():
    from lessonlib.probes import saturated_fraction
    z = torch.tensor([[-3.0, 0.5, 2.2, -0.1], [-1.0, 0.2, 1.0, -2.5], [-0.2, -4.0, 0.3, 0.0]])
    # |tanh z| > 0.97 <=> |z| > artanh(0.97) = 2.092: z = -3.0, 2.2, -2.5, -4.0
    assert saturated_fraction(z, "tanh") == 4 / 12
    # sigmoid within 0.03 of 0 or 1 <=> |z| > ln(0.97 / 0.03) = 3.476: z = -4.0
    assert saturated_fraction(z, "sigmoid") == 1 / 12
    edge = math.atanh(0.97)
    assert saturated_fraction(torch.tensor([[edge - 1e-3, edge + 1e-3]]), "tanh") == 0.5
    assert saturated_fraction(torch.tensor([[3.0]]), "tanh", margin=0.001) == 0.0   # tanh(3) = 0.99505
    with pytest.raises(ValueError, match="bounded activations"):
        saturated_fraction(z, "relu")
    with pytest.raises(ValueError, match="'margin' must be"):
        saturated_fraction(z, "tanh", margin=0.6)


def test_dead_fraction_counts_units_not_entries():
    from lessonlib.probes import dead_fraction
    z = torch.tensor([[-1.0, 2.0, 0.0], [-0.5, -1.0, 0.0]])
    assert dead_fraction(z) == 2 / 3          # unit 0 (negative) and unit 2 (exactly 0) are dead
    with pytest.raises(ValueError, match="shape \\(examples, units\\)"):
        dead_fraction(torch.zeros(3))


def test_probe_saturation_and_dead_units_per_layer():
    model = init_model(mlp([4, 8, 8, 3], "tanh"), "normal", seed=0)   # N(0, 1): many saturated entries
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), Probe(model) as probe:
        model(x)
    from lessonlib.probes import dead_fraction, saturated_fraction
    assert np.allclose(probe.saturation("tanh"), [saturated_fraction(probe.outputs[i], "tanh") for i in range(3)])
    assert np.allclose(probe.dead_units(), [dead_fraction(probe.outputs[i]) for i in range(3)])
    assert probe.saturation("tanh")[1] > 0.2
    with pytest.raises(ValueError, match="Run a forward pass"):
        Probe(model).dead_units()


# --- per-layer histograms (lessonlib.histograms) -------------------------------------------------

def test_layer_fractions_bin_each_layer_on_shared_edges():
    from lessonlib.histograms import layer_fractions, within
    edges = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    layers = [torch.tensor([-0.75, -0.25, 0.25, 0.75]), np.array([[0.1, 0.2], [0.3, 5.0]])]
    fractions = layer_fractions(layers, edges)
    assert fractions.shape == (2, 4)
    assert np.allclose(fractions[0], [0.25, 0.25, 0.25, 0.25])
    assert np.allclose(fractions[1], [0, 0, 0.75, 0])          # 5.0 lies outside: counted, not binned
    assert within(layers[1], 0.25) == 0.5 and within(torch.tensor([-0.5, 0.5, 2.0]), 0.5) == 2 / 3
    with pytest.raises(ValueError, match="increasing"):
        layer_fractions(layers, [1.0, 0.0])
    with pytest.raises(ValueError, match="no values"):
        layer_fractions([np.array([])], edges)
    with pytest.raises(ValueError, match="'half_width' must be"):
        within(layers[0], 0)


def test_plot_layer_histograms_draws_one_line_per_layer_coloured_by_depth():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lessonlib.histograms import plot_layer_histograms
    generator = torch.Generator().manual_seed(0)
    layers = [torch.randn(1000, generator=generator) * 0.5 ** l for l in range(5)]   # narrowing layers
    fig, ax = plt.subplots()
    mappable = plot_layer_histograms(ax, layers, np.linspace(-3, 3, 31), first_layer=1)
    assert len(ax.lines) == 5 and ax.get_yscale() == "log"
    assert mappable.norm.vmin == 1 and mappable.norm.vmax == 5
    # the narrowest (deepest) layer puts the most values in the central bin: a spike
    centre = [np.nanmax(line.get_ydata()) for line in ax.lines]
    assert centre == sorted(centre)
    assert ax.lines[0].get_color() != ax.lines[-1].get_color()
    with pytest.raises(ValueError, match="'floor' must be"):
        plot_layer_histograms(ax, layers, np.linspace(-3, 3, 31), floor=0)
    plt.close(fig)
