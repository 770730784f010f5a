"""The init doctor flags the course's bad initializations, passes the good ones on every model
family, measures what a hand computation gives, and leaves the model exactly as it was."""

import math
import re
import statistics

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.figure import Figure

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp
from lessonlib.doctor import HOOK_DICTS, ROW_KEYS, Finding, diagnose
from lessonlib.models import DigitCNN, ResidualMLP, norm_mlp

DEEP = [64] + [128] * 10 + [10]


@pytest.fixture(scope="module")
def batch():
    data = digits()
    return data.X_train[:256], data.y_train[:256]


def kinds(report, *severities):
    return {f.kind for f in report.findings if f.severity in severities}


# ---------------------------------------------------------------------------------------------
# the course's bad initializations are flagged


def test_zero_init_is_flagged_as_symmetric_and_dead(batch):
    report = diagnose(init_model(mlp(DEEP, "relu"), "zeros"), *batch)
    assert not report.ok
    assert {"zeros", "dead"} <= kinds(report, "error")
    zeros = next(f for f in report.findings if f.kind == "zeros")
    assert zeros.layers == ("0", "2", "4", "6", "8", "10", "12", "14", "16", "18")   # hidden layers only
    assert "kaiming_normal" in zeros.fix
    assert [f.kind for f in report.findings_for("20")] == ["symmetric_output"]       # a zero head is fine
    assert all(r["scheme"] == "zeros" and r["copies"] == 1.0 for r in report.rows)
    assert [r["dead"] for r in report.rows[:-1]] == [1.0] * 10


def test_constant_init_is_flagged_as_symmetric_and_exploding(batch):
    report = diagnose(init_model(mlp(DEEP, "relu"), "constant"), *batch)
    assert {"constant", "forward_exploding", "backward_exploding", "loss_high"} <= kinds(report, "error")
    assert all(r["scheme"] == "constant" and r["copies"] == 1.0 for r in report.rows)


def test_large_normal_on_deep_tanh_is_flagged_as_saturated_with_exploding_gradients(batch):
    report = diagnose(init_model(mlp(DEEP, "tanh"), make_scheme("normal", std=1.0), seed=0), *batch)
    assert {"saturated", "backward_exploding", "loss_high"} <= kinds(report, "error")
    assert "no_scheme" in kinds(report, "warning")
    saturated = next(f for f in report.findings if f.kind == "saturated")
    assert "gain=5/3" in saturated.fix and "tanh" in saturated.message
    assert min(r["saturated"] for r in report.rows[1:-1]) > 0.7
    grow = next(f for f in report.findings if f.kind == "backward_exploding")
    assert "gradient std grows" in grow.message


def test_small_normal_on_deep_relu_is_flagged_as_vanishing(batch):
    report = diagnose(init_model(mlp(DEEP, "relu"), make_scheme("normal", std=0.01), seed=0), *batch)
    assert {"forward_vanishing", "backward_vanishing"} <= kinds(report, "error")
    vanishing = next(f for f in report.findings if f.kind == "backward_vanishing")
    assert "shrinks 0.0" in vanishing.message and "relu layers with weight std 0.0" in vanishing.message
    assert "kaiming_normal_" in vanishing.fix
    ratios = [r["out_ratio"] for r in report.rows[1:]]
    assert all(0.05 < q < 0.12 for q in ratios)          # 0.01 * sqrt(128 / 2) = 0.08 per layer
    assert all(r["scheme"] == "none" for r in report.rows)


# ---------------------------------------------------------------------------------------------
# good initializations pass on every model family


class Recurrent(nn.Module):
    def __init__(self, rnn, embed=False):
        super().__init__()
        self.embed = nn.Embedding(50, 8) if embed else None
        self.rnn, self.head = rnn, nn.Linear(rnn.hidden_size, 5)

    def forward(self, x):
        out, _ = self.rnn(self.embed(x) if self.embed is not None else x)
        return self.head(out[:, -1])


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 3)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(1))


def conv_net():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 64, 10))


def good_cases(batch):
    X, y = batch
    he = lambda model: init_model(model, "kaiming_normal", seed=0)
    norm = [64] + [128] * 6 + [10]
    torch.manual_seed(0)
    seq, tokens = torch.randn(64, 12, 8), torch.randint(0, 50, (64, 12))
    labels = torch.arange(64) % 5
    return {
        "He on a ReLU MLP": (he(mlp(DEEP, "relu")), X, y),
        "Xavier gain 5/3 on tanh": (init_model(mlp(DEEP, "tanh"), make_scheme("xavier_normal", gain=5 / 3),
                                               seed=0), X, y),
        "Xavier on tanh": (init_model(mlp(DEEP, "tanh"), "xavier_normal", seed=0), X, y),
        "PyTorch default, DigitNN": (DigitNN(), X, y),
        "He on a conv net": (he(conv_net()), X.reshape(-1, 1, 8, 8), y),
        "PyTorch default, DigitCNN": (DigitCNN(), X, y),
        "LSTM": (Recurrent(nn.LSTM(8, 32, batch_first=True)), seq, labels),
        "GRU": (Recurrent(nn.GRU(8, 32, batch_first=True)), seq, labels),
        "Embedding and LSTM": (Recurrent(nn.LSTM(8, 32, batch_first=True), embed=True), tokens, labels),
        "TransformerEncoder": (Encoder(), tokens * 2, labels % 3),
        "BatchNorm MLP": (he(norm_mlp(norm, "batch")), X, y),
        "LayerNorm MLP": (he(norm_mlp(norm, "layer")), X, y),
    }


def test_good_initializations_pass_on_every_model_family(batch):
    for name, (model, inputs, targets) in good_cases(batch).items():
        report = diagnose(model, inputs, targets)
        problems = [(f.severity, f.kind, f.message) for f in report.findings if f.severity != "info"]
        assert report.ok and not problems, (name, problems)
        assert all(r["status"] == "ok" for r in report.rows), name
        assert all(r["out_std"] > 0 and r["grad_std"] > 0 for r in report.rows), name


def test_each_family_gets_its_own_measurements(batch):
    cases = good_cases(batch)
    rows = lambda name: {r["name"]: r for r in diagnose(*cases[name]).rows}
    lstm = rows("LSTM")["rnn"]
    assert lstm["type"] == "LSTM" and lstm["scheme"] == "default"     # U(±1/sqrt(hidden))
    assert [w["param"] for w in lstm["weights"]] == ["weight_ih_l0", "weight_hh_l0"]
    assert abs(lstm["forget_bias"]) < 0.2 and lstm["hh_spread"] > 5    # default: not orthogonal
    assert rows("GRU")["rnn"]["forget_bias"] is None
    transformer = rows("TransformerEncoder")
    attention = transformer["encoder.layers.0.self_attn"]
    assert [w["param"] for w in attention["weights"]] == ["in_proj_weight", "out_proj.weight"]
    assert [w["scheme"] for w in attention["weights"]] == ["xavier", "default"]
    assert "encoder.layers.0.self_attn.out_proj" not in transformer             # part of the attention row
    assert transformer["encoder.layers.0.linear1"]["activation"] == "relu"       # F.relu, found from values
    assert transformer["embed"]["scheme"] == "default"                          # N(0, 1)
    norm = transformer["encoder.layers.1.norm2"]
    assert (norm["gain_mean"], norm["bias_mean"]) == (1.0, 0.0)
    batchnorm = rows("BatchNorm MLP")
    assert batchnorm["1"]["activation"] == "relu" and batchnorm["1"]["dead"] is not None
    assert batchnorm["0"]["activation"] == "relu" and batchnorm["0"]["scheme"] == "he"   # through the norm
    digit_nn = diagnose(*cases["PyTorch default, DigitNN"]).rows                # F.relu, found from values
    assert [r["activation"] for r in digit_nn] == ["relu", "relu", None]


def test_zero_residual_branches_and_zero_norm_gains_are_info():
    model = ResidualMLP(n_blocks=4)
    with torch.no_grad():
        for layer in model.branch_outputs():
            layer.weight.zero_()
            layer.bias.zero_()
    report = diagnose(model, torch.randn(32, 64), torch.arange(32) % 10)
    assert report.ok and "zeros_bypassed" in kinds(report, "info")
    norm = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
    nn.init.zeros_(norm[1].weight)
    zero_gain = diagnose(norm, torch.randn(4, 8))
    assert [(f.severity, f.kind) for f in zero_gain.findings_for("1")] == [("info", "zero_gain")]
    assert zero_gain.findings_for("1")[0].message.startswith("the normalization gain is 0 in layer 1:")


def test_zero_init_residual_is_one_info_finding_not_a_missing_gradient(batch):
    from lessonlib.architectures import NormResidualMLP, zero_init_residual
    torch.manual_seed(0)
    model = zero_init_residual(NormResidualMLP(n_blocks=4))
    report = diagnose(model, batch[0].double(), batch[1])
    assert report.ok, [f.message for f in report.findings]
    gains = [f for f in report.findings if f.kind == "zero_gain"]
    assert len(gains) == 1 and len(gains[0].layers) == 4
    hidden = [r for r in report.rows if r["name"].startswith("blocks.") and r["kind"] == "weight"]
    assert hidden and all(r["grad_std"] == 0 for r in hidden)      # behind the zero gains, as the message says


# ---------------------------------------------------------------------------------------------
# the numbers are what a hand computation gives


def test_numbers_match_a_hand_computation():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        model[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[2].bias.fill_(0.5)
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, 1.0]])
    # by hand: z1 = x W1^T = [[1, 3], [3, 2], [-2, -1]], a1 = relu(z1) = [[1, 3], [3, 2], [0, 0]],
    # out = a1 W2^T + 0.5 = [-1.5, 1.5, 0.5]; with L = sum(out^2) / 2, dL/dout = out and
    # dL/dz1 = dL/dout * W2 * relu'(z1) = [[-1.5, 1.5], [1.5, -1.5], [0, 0]]
    z1, out = [1, 3, 3, 2, -2, -1], [-1.5, 1.5, 0.5]
    grad_z1 = [-1.5, 1.5, 1.5, -1.5, 0, 0]
    first, second = diagnose(model, x, torch.zeros(3), loss=lambda o, t: (o ** 2).sum() / 2).rows
    assert first["weight_std"] == pytest.approx(statistics.stdev([1, 0, 1, 1]))          # 0.5
    assert second["weight_std"] == pytest.approx(math.sqrt(2))
    assert (first["fan_in"], first["fan_out"]) == (2, 2)
    assert first["std_lecun"] == pytest.approx(1 / math.sqrt(2))
    assert first["std_xavier"] == pytest.approx(math.sqrt(2) * math.sqrt(2 / 4))         # ReLU gain sqrt(2)
    assert first["std_he"] == pytest.approx(1.0)
    assert first["out_mean"] == pytest.approx(1.0) and first["out_std"] == pytest.approx(statistics.stdev(z1))
    assert second["out_std"] == pytest.approx(statistics.stdev(out))
    assert first["grad_std"] == pytest.approx(statistics.stdev(grad_z1))
    assert second["grad_std"] == pytest.approx(statistics.stdev(out))
    assert second["out_ratio"] == pytest.approx(statistics.stdev(out) / statistics.stdev(z1))
    assert second["grad_ratio"] == pytest.approx(statistics.stdev(out) / statistics.stdev(grad_z1))
    assert (first["activation"], first["dead"], first["copies"]) == ("relu", 0.0, 0.0)
    assert (second["activation"], second["dead"], second["out_ratio"] is not None) == (None, None, True)


def test_without_targets_the_backward_signal_is_a_fixed_random_projection():
    model = init_model(mlp([16, 32, 32, 4], "relu"), "kaiming_normal", seed=0)
    x = torch.randn(50, 16)
    a, b = diagnose(model, x), diagnose(model, x)
    with torch.no_grad():                                          # it runs its own backward pass anyway
        c = diagnose(model, x)
    grad_std = lambda report: [r["grad_std"] for r in report.rows]
    assert grad_std(a) == grad_std(b) == grad_std(c)
    assert a.rows[-1]["grad_std"] == pytest.approx(1.0, abs=0.1)          # u ~ N(0, 1) at the output
    assert a.classifier is None


# ---------------------------------------------------------------------------------------------
# the model is left exactly as it was


def snapshot(model):
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "hooks": [{h: list(getattr(m, h).items()) for h in HOOK_DICTS if hasattr(m, h)}
                  for m in model.modules()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "rng": torch.get_rng_state(),
    }


def assert_same(before, after):
    assert before["state"].keys() == after["state"].keys()
    assert all(torch.equal(before["state"][k], after["state"][k]) for k in before["state"])
    assert before["training"] == after["training"] and before["hooks"] == after["hooks"]
    assert [g is None for g in before["grads"]] == [g is None for g in after["grads"]]
    assert all(torch.equal(g, h) for g, h in zip(before["grads"], after["grads"]) if g is not None)
    assert torch.equal(before["rng"], after["rng"])


def watched_model():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    model[4].eval()                                            # a mixed mode must stay mixed
    model[0].register_forward_hook(lambda m, args, out: None)
    model[1].register_forward_pre_hook(lambda m, args: None)
    model[4].register_full_backward_hook(lambda m, gin, gout: None)
    model(torch.randn(4, 8)).sum().backward()                  # grads and running stats, not None
    model[4].bias.grad = None                                  # one parameter without a grad
    return model


def test_leaves_the_model_exactly_as_it_was():
    model, x = watched_model(), torch.randn(32, 8)
    before = snapshot(model)
    report = diagnose(model, x, torch.arange(32) % 3)
    assert len(report.rows) == 3
    assert_same(before, snapshot(model))
    assert model[1].num_batches_tracked == 1                   # BatchNorm ran in training mode, restored


def test_leaves_the_model_as_it_was_when_the_forward_raises():
    model, x = watched_model(), torch.randn(32, 8)
    model.insert(4, nn.Linear(5, 5))           # BatchNorm (updates) and Dropout (draws) run, then this fails
    before = snapshot(model)
    with pytest.raises(ValueError, match="does not fit"):
        diagnose(model, x)
    assert_same(before, snapshot(model))


# ---------------------------------------------------------------------------------------------
# clear errors for bad input


def test_clear_errors_for_bad_input():
    x = torch.randn(10, 64)
    with pytest.raises(ValueError, match="ReLU has no parameters"):
        diagnose(nn.ReLU(), x)
    with pytest.raises(ValueError, match=r"inputs of shape \[\(10, 3\)\]; the first layer 'fc1' \(Linear\) "
                                         r"expects 64 input features, a batch of shape \(examples, 64\)\. PyTorch says") as err:
        diagnose(DigitNN(), torch.randn(10, 3))
    assert isinstance(err.value.__cause__, RuntimeError)
    with pytest.raises(ValueError, match=r"first layer '0' \(Linear\) expects 4 input features, .*; "
                                         r"layer '1' \(Linear\) got \[\(10, 8\)\] and expects "
                                         r"5 input features, a batch of shape \(examples, 5\)"):
        diagnose(nn.Sequential(nn.Linear(4, 8), nn.Linear(5, 2)), torch.randn(10, 4))
    with pytest.raises(ValueError, match=r"expects 1 input channels, a batch of shape \(examples, 1, size, size\)"):
        diagnose(conv_net(), torch.randn(10, 3, 8, 8))
    with pytest.raises(ValueError, match=r"expects integer ids in \[0, 10\)"):
        diagnose(nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 2)), torch.tensor([[1, 20]]))
    with pytest.raises(ValueError, match="The loss check needs targets.*Got targets=None"):
        diagnose(DigitNN(), x, loss=True)
    with pytest.raises(ValueError, match="one label per example: 10, the output's batch size. Got 7"):
        diagnose(DigitNN(), x, torch.zeros(7, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer class labels, shape \(batch,\).*Got shape \(10,\), "
                                         r"torch.float32"):
        diagnose(DigitNN(), x, torch.zeros(10))
    with pytest.raises(ValueError, match=r"class labels in \[0, 10\).*from 3 to 12"):
        diagnose(DigitNN(), x, torch.arange(10) + 3)
    with pytest.raises(ValueError, match="'inputs' must be a tensor with the batch first"):
        diagnose(DigitNN(), [[0.0] * 64])
    with pytest.raises(ValueError, match="'loss' must be None"):
        diagnose(DigitNN(), x, loss="mse")


def test_a_layer_it_cannot_judge_is_a_row_not_a_crash():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.scale * x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), Scaled(), nn.Linear(8, 2))
            self.unused = nn.Linear(3, 3)

        def forward(self, x):
            return self.body(x)

    model = Net()
    report = diagnose(model, torch.randn(16, 4))
    status = {r["name"]: r["status"] for r in report.rows}
    assert status == {"body.0": "ok", "body.2": "not examined", "body.3": "ok", "unused": "not called"}
    assert report.ok and {"not_examined", "not_called"} <= kinds(report, "info")
    assert "own parameters scale" in report.rows[1]["notes"][0]


def test_tuple_inputs_and_tuple_outputs():
    lstm = nn.LSTM(4, 6)                                      # returns (out, (h, c)), takes (x, (h0, c0))
    x, h0 = torch.randn(5, 3, 4), (torch.zeros(1, 3, 6), torch.zeros(1, 3, 6))
    report = diagnose(lstm, (x, h0))
    assert [r["name"] for r in report.rows] == [""] and report.rows[0]["out_std"] > 0
    assert "(model)" in str(report)


# ---------------------------------------------------------------------------------------------
# the classifier checks


def test_loss_at_init_is_ln_c_for_a_zero_output_layer(batch):
    model = init_model(mlp([64, 32, 10]), "kaiming_normal", seed=0)
    nn.init.zeros_(model[2].weight)
    report = diagnose(model, *batch)
    assert report.classifier["loss"] == pytest.approx(math.log(10), abs=1e-6)
    assert report.classifier["ln_classes"] == pytest.approx(math.log(10))
    assert report.ok


def test_output_bias_against_the_log_priors():
    torch.manual_seed(0)
    x, y = torch.randn(200, 16), (torch.arange(200) % 10 == 0).long()          # 90% class 0
    model = init_model(mlp([16, 32, 2]), "kaiming_normal", seed=0)
    zero_bias = diagnose(model, x, y)
    assert [f.severity for f in zero_bias.findings if f.kind == "output_bias"] == ["warning"]
    assert zero_bias.classifier["bias_matches_log_priors"] is False
    assert zero_bias.classifier["priors"][0] == pytest.approx(0.9, abs=0.01)
    with torch.no_grad():
        model[2].bias.copy_(torch.log(torch.tensor([0.9, 0.1])))
    log_prior = diagnose(model, x, y)
    assert log_prior.classifier["bias_matches_log_priors"] is True
    assert log_prior.classifier["output_layer"] == "2"
    assert "output_bias" not in kinds(log_prior, "error", "warning", "info") and log_prior.ok
    balanced = diagnose(model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None),
                        x, torch.arange(200) % 2)
    assert "output_bias" not in kinds(balanced, "error", "warning", "info")


# ---------------------------------------------------------------------------------------------
# the report as text, HTML, data and figure


def test_report_prints_as_a_table_and_holds_plain_data(batch):
    report = diagnose(init_model(mlp([64, 32, 32, 10], "relu"), "zeros"), *batch)
    assert all(set(r) == set(ROW_KEYS) for r in report.rows)
    assert all(isinstance(f, Finding) and f.severity in ("error", "warning", "info") and f.fix
               for f in report.findings)
    text = str(report).splitlines()
    assert text[0].split()[:5] == ["#", "layer", "type", "act", "w"] and set(text[1]) == {"-"}
    assert text[2].split()[:5] == ["0", "0", "Linear", "relu", "0"] and "100%" in text[2]
    assert len({len(line) for line in text[:5]}) == 1                          # fixed width
    assert any(line.startswith("[error] 0: every weight is 0") for line in text)
    html = report._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 4 and "every weight is 0" in html
    he = diagnose(init_model(mlp([64, 32, 10]), "kaiming_normal", seed=0), *batch)
    assert f"{he.rows[0]['out_std']:.3g}" in str(he) and f"{he.rows[0]['out_std']:.6f}" not in str(he)
    findings = text[text.index(next(line for line in text if line.endswith("findings:"))) + 1:]
    assert findings and all(len(line) <= 100 for line in findings)             # wrapped for a terminal


def test_weights_off_every_scheme_are_reported_with_their_range():
    from lessonlib.architectures import TinyTransformer, gpt2_init, lookup_task
    torch.manual_seed(0)
    model = TinyTransformer()
    gpt2_init(model)
    task = lookup_task()
    off = next(f for f in diagnose(model, task.X_test[:64], task.y_test[:64]).findings if f.kind == "no_scheme")
    residual = 0.02 / math.sqrt(2 * len(model.layers))             # GPT-2's residual projections
    low, high = map(float, re.match(r"weight std ([\d.]+) to ([\d.]+) is", off.message).groups())
    assert 0.9 * residual < low < high < 1.1 * residual               # not the 0.02 of the in-projections


def test_plot_shows_both_signals_and_marks_flagged_layers(batch):
    report = diagnose(init_model(mlp(DEEP, "relu"), make_scheme("normal", std=0.01), seed=0), *batch)
    fig = report.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == ("layer (forward order)", "std", "log")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["forward: std of the layer's output", "backward: std of the gradient at its output"]
    assert "flagged layer (error or warning)" in labels
    forward, backward, flagged = ax.get_lines()[:3]
    assert list(forward.get_ydata()) == pytest.approx([r["out_std"] for r in report.rows])
    assert list(backward.get_ydata()) == pytest.approx([r["grad_std"] for r in report.rows])
    assert len(flagged.get_xdata()) == 2 * len(report.rows)
    clean = diagnose(init_model(mlp(DEEP, "relu"), "kaiming_normal", seed=0), *batch).plot().axes[0]
    assert len(clean.get_lines()[2].get_xdata()) == 0 and "no problem" in clean.get_title()
    assert plt.fignum_exists(fig.number)           # a pyplot figure: plt.show() and a notebook show it
    given = plt.subplots()[1]
    assert report.plot(ax=given) is given.figure and given.get_yscale() == "log"
    plt.close("all")
