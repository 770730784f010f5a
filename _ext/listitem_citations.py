"""Bibliography entries that a screen reader announces as the items of a list.

docutils writes a bibliography as ``<div role="list" class="citation-list">`` holding one
``<div role="doc-biblioentry">`` per entry. ARIA 1.2 deprecates ``doc-biblioentry``, so assistive
technology finds a list without items (axe-core: aria-required-children, "critical"). This
extension gives each entry the role ``listitem`` instead.
"""


def entries_as_list_items(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app):
    app.connect("html-page-context", entries_as_list_items)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
