"""Small fixes to the built pages.

sphinx-thebe registers its configuration script twice under Jupyter Book 1, which declares the same
``const`` twice and throws in the browser; keep the first copy of each script.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for js in context.get("script_files", []):
        # an inline script has filename None or "": both mean "no file"
        filename = getattr(js, "filename", js) or ""
        key = (str(filename), tuple(sorted((getattr(js, "attributes", None) or {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
