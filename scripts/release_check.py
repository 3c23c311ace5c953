"""``make release-check``: what a user gets from the wheel, checked the way a user would get it.

1. builds the sdist and the wheel (``python -m build``: the wheel is built from the sdist),
2. ``twine check --strict`` on both, and checks their contents (LICENSE, the emulator's
   README, the version, a long description without relative links),
3. installs the wheel with Airflow into a fresh virtualenv (pip's cache is reused),
4. from a temporary directory, with nothing of the source tree importable: Airflow
   discovers the provider, the emulator starts from the installed package, and the
   example pipeline DAG, taken from the sdist, runs against it with ``airflow dags test``.

Exits non-zero naming the first step that failed. ``--keep`` leaves the work directory.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAG = "example_dags/example_opsera_pipeline.py"
EXAMPLE_DAG_ID = "example_opsera_pipeline"
# A code span, or the target of an inline Markdown link or image (whose text may hold code spans).
CODE_OR_LINK_TARGET = re.compile(r"(?P<code>`[^`]*`)|!?\[(?:[^\]`]|`[^`]*`)*\]\((?P<target>[^)\s]+)")
ABSOLUTE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|#)")
EMULATOR_START_TIMEOUT = 60
DAG_TEST_TIMEOUT = 600


class CheckFailed(Exception):
    pass


def build_script():
    """The project's setup.py as a module (it calls setup() only when run as a script)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("opsera_setup", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relative_links(markdown: str) -> list[str]:
    """Link and image targets a package index page cannot resolve (code blocks aside)."""
    found, in_fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence:
            continue
        targets = (m["target"] for m in CODE_OR_LINK_TARGET.finditer(line) if not m["code"])
        found += [target for target in targets if not ABSOLUTE.match(target)]
    return found


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def artifact_problems(sdist: Path, wheel: Path, version: str) -> list[str]:
    """What is wrong with a built sdist and wheel; empty when nothing is."""
    problems = []
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        in_sdist = {name.removeprefix(top + "/") for name in archive.getnames()}
    for needed in ("LICENSE", "README.md", "CHANGELOG.md", EXAMPLE_DAG, "airflow_provider_opsera/emulator/README.md"):
        if needed not in in_sdist:
            problems.append(f"the sdist has no {needed}")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    dist_info = f"airflow_provider_opsera-{version}.dist-info"
    for needed in (
        f"{dist_info}/licenses/LICENSE",
        "airflow_provider_opsera/emulator/README.md",
        "airflow_provider_opsera/emulator/default_seed.json",
        "airflow_provider_opsera/py.typed",
    ):
        if needed not in in_wheel:
            problems.append(f"the wheel has no {needed}")
    stray = sorted({name.split("/")[0] for name in in_wheel} - {"airflow_provider_opsera", dist_info})
    if stray:
        problems.append(f"the wheel installs more than the package: {stray}")
    metadata = wheel_metadata(wheel)
    if metadata["Version"] != version:
        problems.append(f"the wheel's version is {metadata['Version']}, the source says {version}")
    if metadata["License-Expression"] != "Apache-2.0":
        problems.append(f"License-Expression is {metadata['License-Expression']!r}, not 'Apache-2.0'")
    if any(c.startswith("License ::") for c in metadata.get_all("Classifier") or []):
        problems.append("a license classifier is set next to the SPDX expression")
    if metadata["Description-Content-Type"] != "text/markdown":
        problems.append(f"Description-Content-Type is {metadata['Description-Content-Type']!r}")
    relative = relative_links(metadata.get_payload())
    if relative:
        problems.append(f"the long description has relative links a package index cannot resolve: {relative}")
    return problems


# -- running things --


STARTED = time.monotonic()


def step(title: str) -> None:
    print(f"\n== [{time.monotonic() - STARTED:4.0f} s] {title}", flush=True)


def run(command: list, *, cwd: Path | None = None, env: dict | None = None, timeout: float = 900) -> str:
    shown = " ".join(str(part) for part in command)
    print(f"$ {shown}", flush=True)
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if result.returncode != 0:
        raise CheckFailed(f"{shown} exited {result.returncode}:\n{result.stdout[-4000:]}")
    return result.stdout


def user_environment(venv: Path, home: Path) -> dict[str, str]:
    """A shell of a user who installed the wheel: this venv first on PATH, no source tree, no inherited Airflow config."""
    keep = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    return {
        **keep,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def start_emulator(venv: Path, cwd: Path, env: dict) -> tuple[subprocess.Popen, str, str]:
    """The installed ``opsera-emulator`` on a free port; its URL and the connection JSON it prints."""
    process = subprocess.Popen(
        [str(venv / "bin" / "opsera-emulator"), "--port", "0", "--time-scale", "300", "--print-connection"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout.readline() for _ in range(2)), daemon=True)
    reader.start()
    reader.join(EMULATOR_START_TIMEOUT)
    match = re.search(r"listening on (http://\S+)", lines[0]) if lines else None
    if reader.is_alive() or not match or len(lines) < 2:
        process.kill()
        raise CheckFailed(f"the installed emulator did not start within {EMULATOR_START_TIMEOUT} s: {lines!r}")
    return process, match.group(1), lines[1].strip()


def check(work: Path, airflow_version: str) -> None:
    version = build_script().version()
    dist, venv, run_dir, home, dags = (work / name for name in ("dist", "venv", "cwd", "airflow-home", "dags"))
    for folder in (run_dir, home, dags):
        folder.mkdir(parents=True)

    step("build the sdist and the wheel")
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT])
    sdist = next(dist.glob("*.tar.gz"))
    wheel = next(dist.glob("*.whl"))

    step("twine check and the artifacts' contents")
    print(run([sys.executable, "-m", "twine", "--no-color", "check", "--strict", sdist, wheel]), end="")
    problems = artifact_problems(sdist, wheel, version)
    if problems:
        raise CheckFailed("\n".join(problems))
    print(f"{sdist.name}, {wheel.name}: LICENSE, emulator README, version {version}, absolute links")

    step(f"install the wheel with apache-airflow=={airflow_version} into a fresh virtualenv")
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    # Byte-compiling all of Airflow is much of an install's time; what the check runs compiles as it is imported.
    run([python, "-m", "pip", "install", "--quiet", "--no-compile", f"apache-airflow=={airflow_version}", wheel],
        timeout=1800)
    env = user_environment(venv, home)

    step("nothing of the source tree is importable")
    where = json.loads(run(
        [python, "-c", "import json, sys, airflow_provider_opsera as p; print(json.dumps([p.__file__, sys.path]))"],
        cwd=run_dir, env=env,
    ))
    if not where[0].startswith(str(venv)) or any(str(ROOT) in entry for entry in where[1]):
        raise CheckFailed(f"the provider was imported from {where[0]} with sys.path {where[1]}")
    print(f"the provider is imported from {where[0]}")

    step("Airflow discovers the provider")
    output = run([venv / "bin" / "airflow", "providers", "get", "airflow-provider-opsera", "-o", "json"],
                 cwd=run_dir, env=env)
    found = json.loads(output[output.index("["):])
    if not found or found[0].get("Version") != version:
        raise CheckFailed(f"airflow providers get answered {found!r}, expected version {version}")
    print(f"airflow providers get: {found[0].get('Provider')} {found[0]['Version']}")
    readme = run([venv / "bin" / "opsera-emulator", "--readme"], cwd=run_dir, env=env)
    if not readme.startswith("# Opsera API emulator"):
        raise CheckFailed(f"opsera-emulator --readme printed {readme[:200]!r}")

    step(f"the installed emulator, and {EXAMPLE_DAG} from the sdist in airflow dags test")
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/" + EXAMPLE_DAG))
        (dags / Path(EXAMPLE_DAG).name).write_bytes(archive.extractfile(member).read())
    run([venv / "bin" / "airflow", "db", "migrate"], cwd=run_dir, env=env)
    emulator, url, connection = start_emulator(venv, run_dir, env)
    print(f"the installed emulator listens on {url}")
    try:
        dag_env = {
            **env,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW_CONN_OPSERA_DEFAULT": connection,
            "OPSERA_EXAMPLE_POLL_INTERVAL": "1",
        }
        output = run([venv / "bin" / "airflow", "dags", "test", EXAMPLE_DAG_ID], cwd=run_dir, env=dag_env,
                     timeout=DAG_TEST_TIMEOUT)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    states = re.findall(r"DagRun Finished.*?state=(\w+)", output)
    if states != ["success"]:
        raise CheckFailed(f"{EXAMPLE_DAG_ID} finished {states or 'without a final state'}:\n{output[-4000:]}")
    print(f"{EXAMPLE_DAG_ID}: success")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow-version", default=os.environ.get("AIRFLOW_VERSION", "3.3.2"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="opsera-release-check-"))
    try:
        check(work, args.airflow_version)
    except (CheckFailed, subprocess.TimeoutExpired) as failure:
        print(f"\nrelease check FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nrelease check passed in {time.monotonic() - STARTED:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
