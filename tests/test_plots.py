"""The book-wide scheme colours: a legend can tell every pair of schemes the book draws together."""

from lessonlib.plots import FAMILY_COLORS, PARAMETERISED_COLORS, scheme_color


def family(name: str) -> str:
    """A scheme's family: its normal and uniform variants share one colour on purpose."""
    return name.rsplit("_", 1)[0] if name.endswith(("_normal", "_uniform")) else name


def test_no_two_families_share_a_colour():
    colours = {}
    for name, colour in FAMILY_COLORS.items():
        colours.setdefault(colour.lower(), set()).add(family(name))
    shared = {c: f for c, f in colours.items() if len(f) > 1}
    assert not shared, f"families sharing a colour: {shared}"


def test_parameterised_schemes_have_colours_of_their_own():
    family_colours = {c.lower() for c in FAMILY_COLORS.values()}
    own = [c.lower() for c in PARAMETERISED_COLORS.values()]
    assert len(set(own)) == len(own), PARAMETERISED_COLORS
    assert not family_colours & set(own), "a parameterised scheme looks like a whole family"


def test_seed_bands_draw_one_row_per_experiment_with_a_band_per_scheme():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from lessonlib.experiments import Results
    from lessonlib.plots import plot_seed_bands
    from lessonlib.schemes import make_scheme

    schemes = [make_scheme("xavier_normal"), make_scheme("kaiming_normal")]
    loss = np.array([[[2.3, 1.0, 0.5], [2.3, 1.2, 0.6]], [[2.3, 0.8, np.nan], [2.3, 0.9, 0.4]]])
    acc = np.array([[[0.1, 0.5, 0.8], [0.1, 0.4, 0.7]], [[0.1, 0.6, np.nan], [0.1, 0.6, 0.9]]])
    results = Results(schemes, [0, 1], loss, acc, loss, acc, np.array([[-1, -1], [2, -1]]))

    fig = plot_seed_bands({"Adam": results, "SGD": results}, "two optimizers",
                          labels={schemes[0]: "Xavier"}, styles={schemes[1]: "--"})
    assert len(fig.axes) == 4
    loss_ax, acc_ax = fig.axes[2], fig.axes[3]
    assert loss_ax.get_title() == "SGD: training loss" and loss_ax.get_yscale() == "log"
    assert [line.get_label() for line in acc_ax.lines] == ["Xavier", "He normal (1 diverged runs left out)"]
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["Xavier", "He normal (1 diverged runs left out)"]
    assert acc_ax.lines[1].get_linestyle() == "--"
    np.testing.assert_allclose(acc_ax.lines[0].get_ydata(), [10, 45, 75])      # the mean of the seeds, in percent
    plt.close(fig)

    single = plot_seed_bands(results, "one experiment")
    assert len(single.axes) == 2 and single.axes[0].get_title() == ""
    plt.close(single)


def test_seed_bands_need_results():
    import pytest
    from lessonlib.plots import plot_seed_bands

    with pytest.raises(ValueError, match="at least one"):
        plot_seed_bands({}, "nothing")
