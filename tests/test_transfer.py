"""lessonlib.transfer (class subsets, new heads, head features), the transfer-learning claims of
"Beyond the classics" checked independently at another size, and the new head's exercise check."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lessonlib import DigitNN, digits, init_model, make_scheme, mlp, train
from lessonlib.exercises.beyond import (HEAD_MISTAKES, HEAD_STD_TARGETS, check_head_std,
                                        head_check_features, head_std)
from lessonlib.transfer import class_subset, head_features, new_head


@pytest.fixture(scope="module")
def data():
    return digits()


# ---------------------------------------------------------------------------------------------
# class_subset


def test_class_subset_keeps_the_split_and_relabels_in_the_order_given(data):
    old, new = class_subset(data, [0, 1, 2, 3, 4]), class_subset(data, [5, 6, 7, 8, 9])
    assert len(old.X_train) + len(new.X_train) == len(data.X_train)
    assert len(old.X_test) + len(new.X_test) == len(data.X_test)
    assert old.n_classes == new.n_classes == 5
    # the digit 5 is label 0 of the new task, and its training images are the split's own
    fives = data.X_train[data.y_train == 5]
    assert torch.equal(new.X_train[new.y_train == 0], fives)
    swapped = class_subset(data, [7, 3])
    assert torch.equal(swapped.X_test[swapped.y_test == 0], data.X_test[data.y_test == 7])
    assert torch.equal(swapped.X_test[swapped.y_test == 1], data.X_test[data.y_test == 3])
    assert set(swapped.y_train.tolist()) == {0, 1}
    assert "[7, 3]" in swapped.name


@pytest.mark.parametrize("classes, words", [([], "at least one class"), ([3, 10], r"\[3, 10\]"),
                                            ([2, 2], r"\[2, 2\]"), ([1.0, 2], r"\[1.0, 2\]"),
                                            ([True], r"\[True\]"), (-1, "list of class labels")])
def test_class_subset_rejects_bad_classes_naming_what_was_given_and_allowed(data, classes, words):
    with pytest.raises(ValueError, match=words) as error:
        class_subset(data, classes)
    assert "[0, 10)" in str(error.value) or "list of class labels" in str(error.value)


# ---------------------------------------------------------------------------------------------
# new_head and head_features


def test_new_head_replaces_only_the_last_layer_of_a_copy():
    model = init_model(mlp([64, 32, 16, 5]), "kaiming_normal", seed=0)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    new = new_head(model, 3, "xavier_uniform", seed=7)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in original.items())   # untouched
    assert isinstance(new[-1], nn.Linear) and new[-1].weight.shape == (3, 16)
    for k in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert torch.equal(new.state_dict()[k], original[k])
    expected = init_model(nn.Linear(16, 3), "xavier_uniform", seed=7)
    assert torch.equal(new[-1].weight, expected.weight) and torch.equal(new[-1].bias, torch.zeros(3))
    assert all(p.requires_grad for p in new.parameters())


def test_new_head_on_a_named_head_and_with_bias_same():
    model = DigitNN()
    new = new_head(model, 5, make_scheme("normal", mean=5, std=3), seed=0, bias="same")
    assert new.fc3.weight.shape == (5, 64) and model.fc3.weight.shape == (10, 64)
    assert float(new.fc3.bias.detach().mean()) > 1           # drawn from N(5, 3), not zeroed
    assert torch.equal(new.fc1.weight, model.fc1.weight)


def test_frozen_body_stays_put_while_the_head_learns(data):
    task = class_subset(data, [5, 6, 7, 8, 9])
    model = init_model(mlp([64, 32, 5]), "kaiming_normal", seed=0)
    frozen = new_head(model, 5, "kaiming_normal", seed=1, freeze_body=True)
    assert [p.requires_grad for p in frozen.parameters()] == [False, False, True, True]
    head_before = frozen[-1].weight.clone()
    train(frozen, task, epochs=3)
    assert torch.equal(frozen[0].weight, model[0].weight)
    assert not torch.equal(frozen[-1].weight, head_before)
    tuned = new_head(model, 5, "kaiming_normal", seed=1)
    train(tuned, task, epochs=3)
    assert not torch.equal(tuned[0].weight, model[0].weight)


@pytest.mark.parametrize("model, n_classes, kwargs, words", [
    (mlp([4, 3, 2]), 1, {}, "'n_classes' parameter must be an int >= 2. Got 1"),
    (mlp([4, 3, 2]), True, {}, "Got True"),
    (mlp([4, 3, 2]), 3, {"freeze_body": "yes"}, "'freeze_body' parameter must be True or False. Got 'yes'"),
    (nn.Sequential(nn.ReLU()), 3, {}, "no nn.Linear"),
    (nn.Linear(4, 2), 3, {}, "no layer but itself"),
    (nn.Sequential(nn.Linear(4, 4), nn.Conv1d(1, 1, 3)), 3, {}, "not its last layer with weights"),
    (mlp([4, 3, 2]), 3, {"scheme": "gaussian"}, "Unknown initialization scheme 'gaussian'"),
])
def test_new_head_rejects_bad_input(model, n_classes, kwargs, words):
    kwargs = {"scheme": "kaiming_normal", **kwargs}
    with pytest.raises(ValueError, match=words):
        new_head(model, n_classes, **kwargs)


def test_head_features_is_the_bodys_output_and_leaves_no_hook(data):
    model = init_model(mlp([64, 32, 16, 5]), "kaiming_normal", seed=0)
    with torch.no_grad():
        assert torch.equal(head_features(model, data.X_test), model[:-1](data.X_test))
    assert not model[-1]._forward_hooks
    net = init_model(DigitNN(), "kaiming_normal", seed=0)
    with torch.no_grad():
        expected = torch.relu(net.fc2(torch.relu(net.fc1(data.X_test))))
    assert torch.allclose(head_features(net, data.X_test), expected)


# ---------------------------------------------------------------------------------------------
# the section's claims, at another size: a 64-64-32 body pretrained 40 epochs, three head seeds


def test_logit_spread_is_sigma_times_the_rms_norm_of_the_features_and_ignores_the_mean():
    h = torch.relu(torch.randn(300, 40, generator=torch.Generator().manual_seed(5)) + 0.3) * 2
    rms_norm = float(h.pow(2).sum(1).mean().sqrt())
    for scheme, sigma in ((make_scheme("normal", std=0.05), 0.05), (make_scheme("kaiming_normal"), math.sqrt(2 / 40)),
                          (make_scheme("normal", mean=5, std=3), 3.0)):
        var = []
        for seed in range(200):
            with torch.no_grad():
                var.append(float(init_model(nn.Linear(40, 6), scheme, seed=seed)(h).var(dim=1).mean()))
        assert math.sqrt(np.mean(var)) == pytest.approx(sigma * rms_norm, rel=0.1)
    with torch.no_grad():   # the mean shifts every class's logit alike: same softmax, same loss
        y = torch.arange(300) % 6
        shifted = nn.functional.cross_entropy(init_model(nn.Linear(40, 6), make_scheme("normal", mean=5, std=3), seed=1)(h), y)
        centred = nn.functional.cross_entropy(init_model(nn.Linear(40, 6), make_scheme("normal", std=3), seed=1)(h), y)
    assert float(shifted) == pytest.approx(float(centred), rel=1e-3)


@pytest.fixture(scope="module")
def transfer_runs(data):
    old, new = class_subset(data, [0, 1, 2, 3, 4]), class_subset(data, [5, 6, 7, 8, 9])
    pretrained = init_model(mlp([64, 64, 32, 5]), "kaiming_normal", seed=3)
    train(pretrained, old, epochs=40)
    unit = head_std(head_features(pretrained, new.X_train), 1.0)        # the exercise's head: logit spread 1
    schemes = {"bad": make_scheme("normal", mean=5, std=3), "he": make_scheme("kaiming_normal"),
               "small": make_scheme("normal", std=0.01), "unit": make_scheme("normal", std=unit)}

    def norm(model):
        return float(head_features(model, new.X_train).pow(2).sum(1).mean().sqrt())

    runs = {}
    for freeze in (True, False):
        for key, scheme in schemes.items():
            histories, old_acc, growth = [], [], []
            for seed in range(10, 15):
                model = new_head(pretrained, 5, scheme, seed=seed, freeze_body=freeze)
                histories.append(train(model, new, epochs=30))
                with torch.no_grad():
                    scores = pretrained[-1](head_features(model, old.X_test))
                    growth.append(norm(model) / norm(pretrained))
                old_acc.append(float((scores.argmax(1) == old.y_test).float().mean()))
            runs[freeze, key] = {"loss0": np.mean([h.loss[0] for h in histories]),
                                 "acc": np.mean([h.final_test_acc for h in histories]),
                                 "old_acc": np.mean(old_acc), "growth": np.mean(growth)}
    return runs


def test_bad_head_starts_with_a_loss_many_times_larger(transfer_runs):
    bad, he, small = (transfer_runs[True, k]["loss0"] for k in ("bad", "he", "small"))
    assert bad > 5 * he
    assert small == pytest.approx(math.log(5), abs=0.05)     # near-equal logits: every class 1 in 5
    assert he > small


def test_on_a_frozen_body_the_bad_head_barely_learns_and_a_small_head_beats_he(transfer_runs):
    bad, he, small = (transfer_runs[True, k]["acc"] for k in ("bad", "he", "small"))
    assert bad < he - 0.2 and bad < small - 0.2
    assert small > he


def test_a_head_of_logit_spread_one_starts_and_ends_between_the_small_head_and_he(transfer_runs):
    # the answer of the exercise "Scale a new head to its features", on a frozen body
    he, unit, small = (transfer_runs[True, k] for k in ("he", "unit", "small"))
    assert small["loss0"] < unit["loss0"] < he["loss0"]
    assert he["acc"] < unit["acc"] < small["acc"]


def test_fine_tuning_makes_up_for_the_bad_head_without_more_forgetting(transfer_runs):
    bad, he = transfer_runs[False, "bad"], transfer_runs[False, "he"]
    assert bad["acc"] > he["acc"] - 0.03
    assert bad["acc"] > transfer_runs[True, "bad"]["acc"] + 0.3
    assert bad["old_acc"] > he["old_acc"] - 0.03
    assert transfer_runs[True, "bad"]["old_acc"] == transfer_runs[True, "he"]["old_acc"]   # frozen: untouched
    assert transfer_runs[True, "he"]["growth"] == 1.0


def test_fine_tuning_from_a_small_head_grows_the_features_and_forgets_most(transfer_runs):
    small, he, bad = (transfer_runs[False, k] for k in ("small", "he", "bad"))
    assert small["growth"] > 1.5 * he["growth"]
    assert small["old_acc"] < min(he["old_acc"], bad["old_acc"])


# ---------------------------------------------------------------------------------------------
# the exercise check


def test_head_std_gives_the_target_spread():
    h = head_check_features()[0]
    sigma = head_std(h, 2.0)
    with torch.no_grad():
        spread = [float(init_model(nn.Linear(h.shape[1], 8), make_scheme("normal", std=sigma), seed=s)(h)
                        .var(dim=1).mean()) for s in range(100)]
    assert math.sqrt(np.mean(spread)) == pytest.approx(2.0, rel=0.1)
    with pytest.raises(ValueError, match="2-D tensor"):
        head_std(torch.ones(5), 1.0)
    with pytest.raises(ValueError, match=r"'target' parameter must be a float in the range \(0, inf\). Got -1"):
        head_std(h, -1)


def test_check_head_std_accepts_the_formula_and_names_slips(capsys):
    assert check_head_std(lambda h, t: t / h.pow(2).sum(dim=1).mean().sqrt())          # a tensor is fine
    assert check_head_std(lambda h, t: t / math.sqrt(float((h.double() ** 2).sum(1).mean())))
    assert "✓ Correct" in capsys.readouterr().out
    for description, slip in HEAD_MISTAKES.items():
        assert not check_head_std(slip)
        assert description in capsys.readouterr().out
    assert not check_head_std(lambda h, t: 2 * t / h.pow(2).sum(dim=1).mean().sqrt())
    assert "Hint" in capsys.readouterr().out
    assert not check_head_std(lambda h, t: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs a function"):
        check_head_std(0.1)
    assert 1.0 in HEAD_STD_TARGETS
