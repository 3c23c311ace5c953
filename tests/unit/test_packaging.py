"""The package as an index and an installer see it: metadata, license, one version, a long description that renders."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import airflow_provider_opsera
from airflow_provider_opsera.emulator.__main__ import packaged_readme

ROOT = Path(__file__).resolve().parents[2]


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_script = load("opsera_setup", ROOT / "setup.py")
release_check = load("opsera_release_check", ROOT / "scripts" / "release_check.py")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SOURCE = PROJECT["urls"]["Source"]


# What a build reads; copied so that a build writes nothing into the shared source tree.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "CHANGELOG.md")
BUILD_FOLDERS = ("airflow_provider_opsera", "example_dags", "docs")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> tuple[Path, Path]:
    """The sdist and the wheel (built from the sdist), with this environment's setuptools."""
    source, dist = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, source / name)
    for name in BUILD_FOLDERS:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        check=True, capture_output=True, timeout=600,
    )
    return next(dist.glob("*.tar.gz")), next(dist.glob("*.whl"))


# -- what pyproject.toml declares --


def test_the_license_is_an_spdx_expression_with_its_file_and_no_classifier():
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_python_classifiers_start_where_requires_python_does():
    lowest = re.fullmatch(r">=(3\.\d+)", PROJECT["requires-python"]).group(1)
    versions = [c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.match(r"Programming Language :: Python :: 3\.\d+$", c)]
    assert versions == ["3.10", "3.11", "3.12", "3.13"]
    assert versions[0] == lowest


def test_airflow_finds_it_as_a_provider():
    assert "airflow-provider" in PROJECT["keywords"]
    assert {"Framework :: Apache Airflow", "Framework :: Apache Airflow :: Provider"} <= set(PROJECT["classifiers"])


def test_every_project_url_lives_under_the_source_url():
    assert SOURCE.startswith("https://")
    assert all(url.startswith(SOURCE) for url in PROJECT["urls"].values())
    changelog_links = re.findall(r"^\[[^\]]+\]: (\S+)$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert changelog_links and all(url.startswith(SOURCE) for url in changelog_links)


def test_the_version_has_one_place():
    from airflow_provider_opsera.get_provider_info import get_provider_info

    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "airflow_provider_opsera.__version__"}
    assert setup_script.version() == airflow_provider_opsera.__version__
    assert get_provider_info()["versions"] == [airflow_provider_opsera.__version__]
    assert f"## [{airflow_provider_opsera.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


# -- the long description --


def test_relative_links_and_images_point_into_the_source_at_the_release_tag(tmp_path):
    (tmp_path / "example_dags").mkdir()
    markdown = (
        "See [`example_dags/`](example_dags) and [the API](./client/api.py#L10 \"table\").\n"
        "![form](docs/form.png) [home](https://example.org) [below](#install) `[code](span)`\n"
        "```\n[in](a-fence)\n```\n"
    )
    rewritten = setup_script.absolute_links(markdown, "https://git.example/p/", "v1.2.3", root=tmp_path)
    assert rewritten == (
        "See [`example_dags/`](https://git.example/p/tree/v1.2.3/example_dags) and "
        "[the API](https://git.example/p/blob/v1.2.3/client/api.py#L10 \"table\").\n"
        "![form](https://git.example/p/raw/v1.2.3/docs/form.png) [home](https://example.org) [below](#install) "
        "`[code](span)`\n```\n[in](a-fence)\n```\n"
    )
    assert release_check.relative_links(rewritten) == []
    assert release_check.relative_links(markdown) == ["example_dags", "./client/api.py#L10", "docs/form.png"]


def test_the_readme_has_relative_links_that_the_build_rewrites():
    readme = (ROOT / "README.md").read_text()
    assert release_check.relative_links(readme), "the README has no relative link left: this test checks nothing"
    assert release_check.relative_links(setup_script.long_description()) == []


# -- the built artifacts --


def test_the_built_sdist_and_wheel_carry_license_docs_and_clean_metadata(artifacts):
    sdist, wheel = artifacts
    assert release_check.artifact_problems(sdist, wheel, airflow_provider_opsera.__version__) == []
    metadata = release_check.wheel_metadata(wheel)
    assert f"Source, {SOURCE}" in metadata.get_all("Project-URL")
    assert f"]({SOURCE}/raw/v{airflow_provider_opsera.__version__}/docs/connection-form.png)" in metadata.get_payload()


def test_twine_accepts_both(artifacts):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "--no-color", "check", "--strict", *map(str, artifacts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_the_artifact_check_finds_what_is_missing(artifacts, tmp_path):
    import zipfile

    sdist, wheel = artifacts
    stripped = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(stripped, "w") as target:
        for item in source.infolist():
            if not item.filename.endswith(("licenses/LICENSE", "emulator/README.md")):
                target.writestr(item, source.read(item))
    problems = release_check.artifact_problems(sdist, stripped, airflow_provider_opsera.__version__)
    assert any("licenses/LICENSE" in problem for problem in problems)
    assert any("emulator/README.md" in problem for problem in problems)


# -- the emulator's documentation for installed users --


def test_opsera_emulator_readme_prints_the_packaged_documentation():
    documentation = (ROOT / "airflow_provider_opsera" / "emulator" / "README.md").read_text()
    assert packaged_readme() == documentation
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_opsera.emulator", "--readme"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout == documentation + "\n"
