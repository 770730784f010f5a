"""pytest settings shared by the unit tests and nbval's notebook runs."""


def pytest_collectstart(collector):
    # A glued figure is stored as a PNG under a papermill key that nbval would compare byte for
    # byte; images are not comparable across machines, so skip them like nbval skips image/png.
    if getattr(collector, "skip_compare", None) is not None:
        collector.skip_compare += ("application/papermill.record/image/png",)
