"""Small fixes to the built pages.

sphinx-thebe registers its configuration script twice under Jupyter Book 1, which declares the same
``const`` twice and throws in the browser; keep the first copy of each script.

Figures from ``companion.viz`` (``explore``, ``figure``) are HTML outputs carrying their caption and
label (``data-cx-caption``, ``data-cx-name``): wrap each in a numbered Sphinx figure, so prose can
cite it with ``{numref}`name``` and the caption reads "Fig. N ...".

``static/companion.css``: code cells in a 13px font, so 88-character lines fit the column.
"""

import html
import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform

_FIGURE = re.compile(r'^\s*<figure (class="companion-(?:explore|figure)"[^>]*)>(.*)</figure>\s*$', re.S)
_CAPTION = re.compile(r"<!--cx-caption-->.*?<!--/cx-caption-->", re.S)


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


def _attr(attrs: str, name: str):
    m = re.search(rf'{name}="([^"]*)"', attrs)
    return html.unescape(m.group(1)) if m else None


class NumberCompanionFigures(SphinxTransform):
    """Read-time transform (before labels and figure numbers are collected)."""

    default_priority = 500

    def apply(self, **kwargs):
        for raw in list(self.document.findall(nodes.raw)):
            m = _FIGURE.match(raw.astext()) if "html" in raw.get("format", "") else None
            if not m:
                continue
            attrs, body = m.groups()
            caption, name = _attr(attrs, "data-cx-caption"), _attr(attrs, "data-cx-name")
            # the outer element of the output: MyST-NB's mime bundle, else the raw node itself
            target = raw
            while target.parent is not None and not (
                isinstance(target, nodes.container) and target.get("nb_element") == "mime_bundle"
            ):
                target = target.parent
            if target.parent is None:
                target = raw
            if not caption or isinstance(target.parent, nodes.figure):
                continue  # no caption, or the cell's mystnb figure metadata already made it a figure
            # the Sphinx figure holds the caption now: the HTML keeps a <div> without its own caption
            new = nodes.raw("", f"<div {attrs}>{_CAPTION.sub('', body)}</div>", format="html",
                            classes=raw.get("classes", []))
            raw.replace_self(new)
            target = new if target is raw else target
            figure = nodes.figure(classes=["companion-figure"])
            figure.source, figure.line = target.source, target.line
            target.replace_self(figure)
            figure += target
            figure += nodes.caption(caption, caption)
            label = nodes.fully_normalize_name(name) if name else nodes.make_id("cx-" + (_attr(attrs, "id") or ""))
            figure["names"].append(label)
            self.document.note_explicit_target(figure, figure)


def _add_static(app):
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("builder-inited", _add_static)
    app.add_css_file("companion.css")
    app.add_transform(NumberCompanionFigures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
