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


