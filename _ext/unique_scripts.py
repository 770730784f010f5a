"""Load each script of a page once.

With Sphinx 7.4, scripts that sphinx-thebe and sphinx-togglebutton add while the builder already
exists are registered twice, so every page repeated their inline scripts; the second copy of
`const THEBE_JS_URL = ...` is a JavaScript error in the reader's console. This extension keeps the
first copy of every identical script (same file or same inline body, same attributes).
"""


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        filename = getattr(script, "filename", script) or ""  # an inline script has None or ""
        key = (str(filename), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
