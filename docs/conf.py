"""Sphinx configuration of the documentation site: Markdown pages (MyST), the API from the docstrings (autodoc).

Built by ``make docs`` (and ``make test``) with warnings as errors and every reference checked (``-W -n``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from airflow_provider_opsera import __version__  # noqa: E402

project = "airflow-provider-opsera"
author = "airflow-provider-opsera developers"
copyright = "airflow-provider-opsera developers"
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: headings get anchors down to ### so pages can link to a section (page.md#section).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# autodoc: each class with its signature and its documented parameters, the types beside the parameters they
# belong to.
autodoc_class_signature = "mixed"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = f"airflow-provider-opsera {release}"
html_theme_options = {"description": "Apache Airflow provider for Opsera", "fixed_sidebar": True, "page_width": "1200px"}
html_static_path: list[str] = []

# Airflow's own classes (a base class shown with an exception) are documented on Airflow's site, which this
# offline build does not link to: the nitpicky check covers this project's references only.
nitpick_ignore_regex = [("py:class", r"airflow\..*")]


def setup(app):
    # The emulator's reference (included from the package) shows JSON with comments.
    from pygments.lexers import JavascriptLexer

    app.add_lexer("jsonc", JavascriptLexer)
