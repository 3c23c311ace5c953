"""The package index's long description: README.md with its relative links made absolute.

Everything else about the package is in pyproject.toml. A package index page has no
repository around it, so a link such as ``example_dags/`` or an image such as
``docs/connection-form.png`` is rewritten to the project's Source URL at the tag of
this version (``v0.1.0``); links into code blocks and absolute links stay as they are.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# A code span (kept as it is), or an inline Markdown link or image: [text](target "title") / ![alt](target),
# whose text may hold code spans.
CODE_OR_LINK = re.compile(
    r"(?P<code>`[^`]*`)"
    r"|(?P<bang>!?)\[(?P<text>(?:[^\]`]|`[^`]*`)*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)"
)
ABSOLUTE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|#)")


def absolute_links(markdown: str, source_url: str, ref: str, root: Path = ROOT) -> str:
    """``markdown`` with every relative link and image pointing into ``source_url`` at ``ref``."""
    base = source_url.rstrip("/")

    def rewrite(match: re.Match) -> str:
        target = match["target"]
        if match["code"] or ABSOLUTE.match(target):
            return match[0]
        path, _, anchor = target.removeprefix("./").lstrip("/").partition("#")
        if match["bang"]:
            kind = "raw"
        elif target.endswith("/") or (root / path).is_dir():
            kind = "tree"
        else:
            kind = "blob"
        url = f"{base}/{kind}/{ref}/{path}" + (f"#{anchor}" if anchor else "")
        return f"{match['bang']}[{match['text']}]({url}{match['title'] or ''})"

    lines, in_fence = [], False
    for line in markdown.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence:
            lines.append(line)
            continue
        lines.append(CODE_OR_LINK.sub(rewrite, line))
    return "".join(lines)


def project_table() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def version() -> str:
    text = (ROOT / "airflow_provider_opsera" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE).group(1)


def long_description() -> str:
    source = project_table()["urls"]["Source"]
    return absolute_links((ROOT / "README.md").read_text(encoding="utf-8"), source, f"v{version()}")


if __name__ == "__main__":
    from setuptools import setup

    setup(long_description=long_description(), long_description_content_type="text/markdown")
