"""Sphinx configuration."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "mongo-session-backends"
author = "The mongo-session-backends authors"
copyright = "2026, " + author
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = False
# furo sizes figures to the text column and scrolls wide code blocks and
# tables inside it, so nothing is cut off at any window width.
html_theme = "furo"
html_title = project
exclude_patterns = ["_build"]
