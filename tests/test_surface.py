"""The one-neuron loss surface: exact gradient, two minima where the text says, robust basins,
and clear errors for bad input."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lessonlib.surface import (  # noqa: E402
    NeuronFit, basin_map, descend, descend_all, find_minimum, loss_grid, plateau, plot_basins,
    plot_fits, plot_surface, sigmoid)

A, B = (-1.5, 0.5), (-1.5, 3.5)  # the chapter's two starting points
POINTS = [(0.0, 0.0), (-1.5, 0.5), (2.0, -1.0), (-3.0, 9.0), (0.7, 4.2), (4.0, -3.0)]


@pytest.fixture(scope="module")
def problem():
    return plateau()


def test_plateau_data(problem):
    assert problem.x.shape == problem.y.shape == (81,)
    assert problem.x[0] == -4 and problem.x[-1] == 4
    # the target rises through 1/2 at x = -2 and falls through 1/2 at x = 3
    assert np.interp(-2.0, problem.x, problem.y) == pytest.approx(0.5, abs=1e-3)
    assert np.interp(3.0, problem.x, problem.y) == pytest.approx(0.5, abs=1e-3)
    assert problem.y.max() == pytest.approx(1.0, abs=2e-3) and problem.y.min() > 0


def test_sigmoid_is_stable_and_exact():
    assert sigmoid(0.0) == 0.5
    assert np.isfinite(sigmoid(np.array([-1e4, 1e4]))).all()
    z = np.linspace(-5, 5, 11)
    assert np.allclose(sigmoid(z), 1 / (1 + np.exp(-z)))


@pytest.mark.parametrize("w, b", POINTS)
def test_gradient_matches_autograd(problem, w, b):
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    x, y = torch.tensor(problem.x), torch.tensor(problem.y)
    loss = ((torch.sigmoid(wt * x + bt) - y) ** 2).mean()
    loss.backward()
    assert problem.loss(w, b) == pytest.approx(loss.item(), rel=1e-12)
    dw, db = problem.gradient(w, b)
    assert dw == pytest.approx(wt.grad.item(), rel=1e-9, abs=1e-15)
    assert db == pytest.approx(bt.grad.item(), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("w, b", POINTS)
def test_gradient_matches_finite_differences(problem, w, b):
    h = 1e-6
    dw = (problem.loss(w + h, b) - problem.loss(w - h, b)) / (2 * h)
    db = (problem.loss(w, b + h) - problem.loss(w, b - h)) / (2 * h)
    assert np.allclose(problem.gradient(w, b), (dw, db), rtol=1e-5, atol=1e-9)


def test_loss_and_gradient_broadcast_over_a_grid(problem):
    ws, bs = np.linspace(-2, 2, 5), np.linspace(-1, 3, 4)
    grid = loss_grid(problem, ws, bs)
    assert grid.shape == (4, 5)
    assert grid[2, 3] == pytest.approx(problem.loss(ws[3], bs[2]))
    dw, db = problem.gradient(*np.meshgrid(ws, bs))
    assert dw[1, 4] == pytest.approx(problem.gradient(ws[4], bs[1])[0])


def test_descend_takes_plain_gradient_steps(problem):
    path = descend(problem, A, lr=0.5, steps=3)
    assert path.shape == (4, 2)
    assert tuple(path[0]) == A
    for t in range(3):
        expected = path[t] - 0.5 * np.array(problem.gradient(*path[t]))
        assert np.allclose(path[t + 1], expected, rtol=0, atol=1e-15)
    end_w, end_b = descend_all(problem, [A[0], B[0]], [A[1], B[1]], lr=0.5, steps=3)
    assert np.allclose([end_w[0], end_b[0]], path[-1], rtol=0, atol=1e-15)


@pytest.fixture(scope="module")
def runs(problem):
    return {name: descend(problem, start) for name, start in {"A": A, "B": B}.items()}


def test_A_and_B_end_in_two_different_minima_with_the_losses_the_chapter_quotes(problem, runs):
    end_a, end_b = runs["A"][-1], runs["B"][-1]
    # A fits the rising edge sigma(3(x + 2)): (w, b) = (3, 6); B the falling edge: (-3, 9)
    assert np.allclose(end_a, (3.0, 6.0), atol=0.005)
    assert np.allclose(end_b, (-3.0, 9.0), atol=0.005)
    assert round(float(problem.loss(*end_a)), 4) == 0.0919
    assert round(float(problem.loss(*end_b)), 3) == 0.212
    # both ends are where a quasi-Newton search puts the minimum
    for end in (end_a, end_b):
        w, b, loss = find_minimum(problem, end)
        assert np.allclose(end, (w, b), atol=0.005)
        assert problem.loss(*end) == pytest.approx(loss, rel=1e-6)


def test_the_two_ends_are_true_minima(problem):
    for start in (A, B):
        w, b, _ = find_minimum(problem, descend(problem, start)[-1])
        assert np.hypot(*problem.gradient(w, b)) < 1e-8
        h = 1e-4
        f = problem.loss
        hessian = np.array([
            [(f(w + h, b) - 2 * f(w, b) + f(w - h, b)) / h**2,
             (f(w + h, b + h) - f(w + h, b - h) - f(w - h, b + h) + f(w - h, b - h)) / (4 * h**2)],
            [0.0, (f(w, b + h) - 2 * f(w, b) + f(w, b - h)) / h**2]])
        hessian[1, 0] = hessian[0, 1]
        assert np.linalg.eigvalsh(hessian).min() > 0


def test_the_minimum_losses_are_the_missing_edges(problem):
    """At (3, 6) the residual is exactly the falling edge; at (-3, 9) it is the missing rise."""
    x = problem.x
    assert problem.loss(3.0, 6.0) == pytest.approx(np.mean(sigmoid(3 * (x - 3)) ** 2), rel=1e-12)
    assert problem.loss(-3.0, 9.0) == pytest.approx(np.mean((1 - sigmoid(3 * (x + 2))) ** 2), rel=1e-12)


def test_descent_lowers_the_loss_at_every_step(problem, runs):
    for path in runs.values():
        losses = problem.loss(path[:, 0], path[:, 1])
        assert (np.diff(losses) <= 1e-15).all()


@pytest.mark.parametrize("start", [A, B], ids=["A", "B"])
def test_the_outcome_is_not_a_knife_edge(problem, start):
    """Every start within 0.75 of A (of B) descends to the same minimum as A (as B)."""
    minima = [(3.0, 6.0), (-3.0, 9.0)]
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = np.array([0.25, 0.5, 0.75])[:, None]
    ws = start[0] + radii * np.cos(angles)
    bs = start[1] + radii * np.sin(angles)
    end_w, end_b = descend_all(problem, ws, bs, steps=3000)
    expected = 0 if start == A else 1
    nearest = np.hypot(end_w[..., None] - np.array(minima)[:, 0],
                       end_b[..., None] - np.array(minima)[:, 1]).argmin(-1)
    assert (nearest == expected).all()


def test_basin_map_agrees_with_long_descents(problem):
    ws, bs = np.array([-4.0, -2.0, -1.5, 0.5, 3.0]), np.array([-2.0, 0.5, 3.5, 7.0])
    basins = basin_map(problem, ws, bs, [(3.0, 6.0), (-3.0, 9.0)], steps=1000)
    assert basins.shape == (4, 5)
    assert basins[1, 2] == 0 and basins[2, 2] == 1  # A and B
    end_w, _ = descend_all(problem, *np.meshgrid(ws, bs), steps=20_000)
    assert (basins == np.where(end_w > 0, 0, 1)).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"n_points": 1}, "'n_points' parameter must be an int >= 2"),
    ({"n_points": 10.0}, "'n_points' parameter must be an int >= 2"),
    ({"low": 4.0, "high": -4.0}, "low < high"),
    ({"rise": 3.0, "fall": -2.0}, "rise < fall"),
    ({"steepness": 0.0}, "'steepness' parameter must be a finite float in the range (0, inf)"),
    ({"high": float("nan")}, "'high' parameter must be a finite float"),
])
def test_plateau_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plateau(**kwargs)


def test_neuron_fit_rejects_mismatched_data():
    with pytest.raises(ValueError, match="same length"):
        NeuronFit(np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        NeuronFit(np.array([0.0, np.inf]), np.zeros(2))


@pytest.mark.parametrize("kwargs, message", [
    ({"start": (1.0,)}, "'start' parameter must be a pair"),
    ({"start": (1.0, float("inf"))}, "'start' parameter must be a finite float"),
    ({"start": A, "lr": 0.0}, r"'lr' parameter must be a finite float in the range \(0, inf\)"),
    ({"start": A, "lr": -1.0}, "'lr' parameter"),
    ({"start": A, "steps": -1}, "'steps' parameter must be an int >= 0"),
    ({"start": A, "steps": 2.5}, "'steps' parameter must be an int >= 0"),
])
def test_descend_rejects_bad_input(problem, kwargs, message):
    with pytest.raises(ValueError, match=message):
        descend(problem, **kwargs)


def test_basin_map_rejects_bad_minima(problem):
    with pytest.raises(ValueError, match=r"list of \(w, b\) pairs"):
        basin_map(problem, [0.0], [0.0], [3.0, 6.0], steps=1)


def test_figures_draw(problem, runs):
    fig = plot_surface(problem, runs, {"minimum 1": (3.0, 6.0)}, np.linspace(-5, 5, 21),
                       np.linspace(-3, 11, 21), title="t")
    assert len(fig.axes) == 3  # 3-D surface, contour map, colour bar
    ax = plot_fits(problem, {"A": runs["A"][-1]}, {"A": A})
    assert len(ax.lines) == 3
    ax = plot_basins(problem, [0.0, 1.0], [0.0, 1.0], np.array([[0, 1], [1, 0]]), ["m1", "m2"], {"A": A})
    assert ax.get_xlabel() == "starting weight w"
    plt.close("all")
