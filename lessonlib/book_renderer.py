"""The book's notebook renderer: myst-nb's, plus the alt text of each figure.

myst-nb keeps only ``width`` and ``height`` from an output's image metadata. This renderer also
keeps ``alt``, which :func:`lessonlib.alt_text.show` stores there, so that every lesson figure
reaches the page as ``<img alt="what the figure shows">`` instead of its file path. It is
registered in ``pyproject.toml`` under myst-nb's entry point group ``myst_nb.renderers`` and chosen
by ``nb_render_plugin: lessonlib`` in the book's configuration.
"""

from myst_nb.core.render import MimeData, NbElementRenderer


class AltTextRenderer(NbElementRenderer):
    """myst-nb's element renderer that also copies an image output's ``alt`` metadata."""

    def render_image(self, data: MimeData):
        image_nodes = super().render_image(data)
        alt = data.output_metadata.get(data.mime_type, {}).get("alt")
        if alt:
            for node in image_nodes:
                node["alt"] = alt
        return image_nodes
