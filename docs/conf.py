"""Sphinx configuration of metalgpu's documentation: the Markdown pages through MyST, the API reference from the
docstrings through autodoc and napoleon. Build: ``sphinx-build -W -b html docs docs/_build/html`` (README.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # the checkout's code, installed or not

from metalgpu import __version__  # noqa: E402

project = "metalgpu"
author = "the metalgpu authors"
copyright = "the metalgpu authors, MIT licence"
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: anchors for `page.md#section` links, and the ::: fence for directives with Markdown inside.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"  # types go beside the parameters, the signature stays readable
autodoc_typehints_description_target = "documented"  # no "Return type: None" under every method
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # a dataclass's Attributes section, beside the fields autodoc lists

html_theme = "furo"
html_title = f"metalgpu {release}"
html_static_path = ["_static"]


def setup(app):
    # Metal Shading Language is C++14 with attributes: ```metal fences highlight as C++ (Pygments has no MSL lexer).
    from pygments.lexers.c_cpp import CppLexer
    app.add_lexer("metal", CppLexer)
