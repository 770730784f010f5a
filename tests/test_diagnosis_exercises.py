import math

import pytest
import torch

from lessonlib.exercises.diagnosis import (LAYER_CASES, PRIOR_CASES, check_doctor_fix, check_prior_bias,
                                           check_residual_std, flagged_models,
                                           residual_std, targets_with_counts)


def test_residual_std_is_gpt2s():
    assert residual_std(12) == pytest.approx(0.02 / math.sqrt(24))
    with pytest.raises(ValueError, match="'n_layers'.*int >= 1"):
        residual_std(0)


def test_a_right_residual_std_passes(capsys):
    assert check_residual_std(lambda L: 0.02 * (2 * L) ** -0.5)
    assert "✓ Correct" in capsys.readouterr().out


@pytest.mark.parametrize("candidate, slip", [
    (lambda L: 0.02 / math.sqrt(L), "each layer adds two"),
    (lambda L: 0.02 / (2 * L), "applied to the standard deviation"),
    (lambda L: 0.02, "left at the base"),
    (lambda L: 0.02 * math.sqrt(2 * L), "multiplied where it should divide"),
])
def test_residual_slips_are_named(candidate, slip, capsys):
    assert not check_residual_std(candidate)
    out = capsys.readouterr().out
    assert "✗ Not yet" in out and slip in out


def test_a_residual_answer_that_raises_is_reported(capsys):
    assert not check_residual_std(lambda L: 1 / (L - 1))
    assert "raised ZeroDivisionError" in capsys.readouterr().out


def test_targets_with_counts_has_the_counts():
    targets = targets_with_counts((5, 15, 80))
    assert torch.bincount(targets).tolist() == [5, 15, 80]
    assert not torch.equal(targets, targets.sort().values)       # shuffled, but the same every time
    assert torch.equal(targets, targets_with_counts((5, 15, 80)))
    with pytest.raises(ValueError, match="at least 2 positive ints"):
        targets_with_counts((3,))


def log_priors(targets, n_classes):
    return torch.bincount(targets, minlength=n_classes).double().div(len(targets)).log()


@pytest.mark.parametrize("candidate", [
    log_priors,
    lambda t, C: torch.bincount(t, minlength=C).float().log(),          # log counts: a constant shift
    lambda t, C: log_priors(t, C) - 3.0,
])
def test_right_biases_pass_up_to_a_constant(candidate, capsys):
    assert check_prior_bias(candidate)
    assert "✓ Correct" in capsys.readouterr().out


@pytest.mark.parametrize("candidate, slip", [
    (lambda t, C: log_priors(t, C).exp(), "without the log"),
    (lambda t, C: -log_priors(t, C), "sign flipped"),
    (lambda t, C: torch.zeros(C), "uniform guess"),
    (lambda t, C: (log_priors(t, C).exp() / (1 - log_priors(t, C).exp())).log(), "one sigmoid per class"),
])
def test_bias_slips_are_named(candidate, slip, capsys):
    assert not check_prior_bias(candidate)
    out = capsys.readouterr().out
    assert "✗ Not yet" in out and slip in out and "should be the priors" in out


def test_a_bias_of_the_wrong_length_is_reported(capsys):
    assert not check_prior_bias(lambda t, C: torch.zeros(C + 1))
    assert "one per class" in capsys.readouterr().out


def test_checks_need_functions():
    with pytest.raises(ValueError, match="needs a function"):
        check_prior_bias([0.0, 1.0])
    with pytest.raises(ValueError, match="needs a function"):
        check_residual_std(0.02)


def test_cases_cover_imbalance_and_depth():
    assert max(max(c) / sum(c) for c in PRIOR_CASES) > 0.9 and any(len(set(c)) == 1 for c in PRIOR_CASES)
    assert min(LAYER_CASES) == 1 and max(LAYER_CASES) >= 48


def he_for_relu_xavier_for_tanh(model):
    activation = "tanh" if any(isinstance(m, torch.nn.Tanh) for m in model.modules()) else "relu"
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            if activation == "tanh":
                torch.nn.init.xavier_normal_(m.weight, gain=5 / 3)
            else:
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)


def test_a_right_fix_passes(capsys):
    assert check_doctor_fix(he_for_relu_xavier_for_tanh)
    assert "finds nothing to fix in any of the 3" in capsys.readouterr().out


def test_a_fix_that_keeps_a_bad_case_is_told_what_the_doctor_finds(capsys):
    def too_small_everywhere(model):                # the ReLU net stays as flagged as it was
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.normal_(m.weight, std=0.01)

    assert not check_doctor_fix(too_small_everywhere)
    out = capsys.readouterr().out
    assert "✗ Not yet" in out and "10 ReLU layers, N(0, 0.01): the doctor still finds [error]" in out


def test_a_fix_that_changes_the_layers_is_refused(capsys):
    def widen(model):
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight = torch.nn.Parameter(torch.zeros(m.out_features, m.in_features + 1))

    assert not check_doctor_fix(widen)
    assert "changed the model's layers" in capsys.readouterr().out


def test_flagged_models_are_flagged():
    from lessonlib.doctor import diagnose
    from lessonlib import digits
    data = digits()
    for name, model in flagged_models().items():
        assert not diagnose(model, data.X_train[:256], data.y_train[:256]).ok, name
