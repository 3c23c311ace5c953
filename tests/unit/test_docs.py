"""The documentation keeps up with the code: a page per public class, every parameter documented, no dead link.

The site itself is built by ``make docs`` (Sphinx, warnings as errors); these checks need no build.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

import airflow_provider_opsera.exceptions as exceptions_module

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
PUBLIC_PACKAGES = ("operators", "sensors", "triggers", "hooks")
AUTODOC = re.compile(r"^\s*\.\. auto(?:class|exception)::\s+(\S+)", re.MULTILINE)
PARAM = re.compile(r":param (\w+):")
LIFECYCLE_START, LIFECYCLE_END = "<!-- lifecycle:start -->", "<!-- lifecycle:end -->"


def _load_setup_script():
    spec = importlib.util.spec_from_file_location("opsera_setup_for_docs", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_script = _load_setup_script()
SOURCE = setup_script.project_table()["urls"]["Source"].rstrip("/")
# A link into the repository on its main branch, as the docs write links to files outside docs/.
REPOSITORY_LINK = re.compile(re.escape(SOURCE) + r"/(?:blob|tree)/main/(?P<path>[^#?]*)(?:#(?P<anchor>.*))?$")


def public_classes() -> list[tuple[str, type]]:
    found = []
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(f"airflow_provider_opsera.{package}")
        found += [(f"{module.__name__}.{name}", getattr(module, name)) for name in module.__all__]
    return found


def documented_names() -> set[str]:
    return {name for page in PAGES for name in AUTODOC.findall(page.read_text(encoding="utf-8"))}


def test_every_public_operator_sensor_trigger_and_hook_has_its_parameters_on_a_page():
    exported = {path for path, _ in public_classes()}
    assert len(exported) >= 15, exported  # the lookup found the packages' exports
    missing = exported - documented_names()
    assert not missing, f"add an autoclass directive to a page under docs/ for: {sorted(missing)}"


def test_no_page_documents_a_class_the_packages_do_not_export():
    exported = {path for path, _ in public_classes()}
    public_prefixes = tuple(f"airflow_provider_opsera.{package}." for package in PUBLIC_PACKAGES)
    stale = {
        name
        for name in documented_names()
        if name.startswith(public_prefixes) and name.count(".") == 2 and name not in exported
    }
    assert not stale, f"pages document classes that are not exported any more: {sorted(stale)}"


def constructor_parameters(cls: type) -> list[str]:
    """What a DAG author can pass: the class's own ``__init__`` arguments, and its provider bases' while it
    passes ``**kwargs`` on to them (Airflow's own arguments, such as ``task_id``, are Airflow's to document)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("airflow_provider_opsera") or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names += [p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        # ``**unknown`` takes what a stored trigger row holds and this version does not know: not passed on
        if not any(p.kind is p.VAR_KEYWORD and p.name != "unknown" for p in parameters):
            break
    return list(dict.fromkeys(names))


@pytest.mark.parametrize("path, cls", public_classes(), ids=lambda value: getattr(value, "__name__", ""))
def test_each_docstring_names_every_parameter(path, cls):
    parameters = constructor_parameters(cls)
    assert parameters, f"{path}: no parameters found"
    documented = PARAM.findall(cls.__doc__ or "")
    missing = [name for name in parameters if name not in documented]
    assert not missing, f"{path}'s docstring has no ':param NAME:' for {missing}"


def test_constructor_parameters_follow_kwargs_into_provider_bases_only():
    from airflow_provider_opsera.operators import OpseraCreatePersonOperator
    from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger

    assert constructor_parameters(OpseraCreatePersonOperator)[:2] == ["person", "if_exists"]
    assert "task_id" not in constructor_parameters(OpseraCreatePersonOperator)
    # its own __init__ takes no **kwargs: the polling base's timeout is not one of its arguments
    assert "timeout" not in constructor_parameters(OpseraPipelineRunEventTrigger)


def test_troubleshooting_names_every_error_the_provider_raises():
    from airflow_provider_opsera.operators.registry import OpseraUpdateToolError
    from airflow_provider_opsera.writing.record_sync import OpseraInvalidRecordsError, OpseraSyncError

    errors = [value for value in vars(exceptions_module).values() if isinstance(value, type)]
    errors = [e for e in errors if issubclass(e, exceptions_module.OpseraError)]
    errors += [OpseraUpdateToolError, OpseraSyncError, OpseraInvalidRecordsError]
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    missing = [error.__name__ for error in errors if error.__name__ not in page]
    assert not missing, f"docs/troubleshooting.md does not say when these are raised: {missing}"


# -- links --


def github_slug(heading: str) -> str:
    """The anchor GitHub (and MyST's heading anchors) give a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {github_slug(line.lstrip("#")) for line in _outside_fences(markdown) if re.match(r"#{1,6} ", line)}


def _outside_fences(markdown: str) -> list[str]:
    lines, in_fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append(line)
    return lines


def link_targets(markdown: str) -> list[str]:
    targets = []
    for line in _outside_fences(markdown):
        targets += [m["target"] for m in setup_script.CODE_OR_LINK.finditer(line) if not m["code"]]
    return targets


def broken_links(page: Path) -> list[str]:
    """Each link of ``page`` to a file of this repository (relative, or into its Source URL) that leads nowhere."""
    problems = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        into_repository = REPOSITORY_LINK.match(target)
        if into_repository:
            path, anchor = ROOT / into_repository["path"], into_repository["anchor"]
        elif setup_script.ABSOLUTE.match(target) and not target.startswith("#"):
            continue  # another site: not checked (no network)
        else:
            relative, _, anchor = target.partition("#")
            path = (page.parent / relative).resolve() if relative else page
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with that anchor")
    return problems


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_into_the_repository_resolves(page):
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A section: here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a-section-here) [no file](missing.md) [no heading](other.md#nowhere)\n"
        f"[repo]({SOURCE}/blob/main/no/such/file.py) [site](https://example.org/x) `[code](span.md)`\n"
        "```\n[fenced](fenced.md)\n```\n[here](#nothing-here)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading with that anchor",
        f"{SOURCE}/blob/main/no/such/file.py: no such file",
        "#nothing-here: no heading with that anchor",
    ]


# -- the run lifecycle lives in the README, once --


def test_the_run_lifecycle_page_includes_the_readme_section_between_its_markers():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(LIFECYCLE_START) == readme.count(LIFECYCLE_END) == 1
    section = readme.split("## How a pipeline task behaves\n", 1)[1].split("\n## ", 1)[0]
    assert section.index(LIFECYCLE_START) < section.index(LIFECYCLE_END)
    page = (DOCS / "run-lifecycle.md").read_text(encoding="utf-8")
    assert "{include} ../README.md" in page
    assert f":start-after: {LIFECYCLE_START}" in page and f":end-before: {LIFECYCLE_END}" in page
