"""A Sphinx extension for the book's build (listed in ``_config.yml``): each script once per page.

Jupyter Book 1.0.4 registers sphinx-thebe's configuration script twice, so every page declared
``const THEBE_JS_URL`` twice and the browser logged a SyntaxError on each page load."""

from __future__ import annotations


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated entries (same file, or no file and the same inline body, and the same
    attributes) from the page's ``script_files``, keeping the first."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {}) or {}
        # The repeat of an inline script has filename '' where the first has None.
        filename = str(getattr(js, "filename", js) or "")
        key = (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
