#!/usr/bin/env bash
# Run the provider's tests on several Airflow versions, each in its own virtualenv.
#
#   scripts/matrix.sh                      full suites on every version in AIRFLOW_VERSIONS
#   scripts/matrix.sh --smoke 2.11.2       a quick subset on the versions named
#   scripts/matrix.sh --install-only ...   only build the virtualenvs
#
# Full:  tests/unit tests/emulator tests/integration (one dag.test() per example DAG).
# Smoke: the provider info, the hook, and one dag.test() run.
#
# Each version gets .venv-MAJOR.MINOR (e.g. .venv-2.11), rebuilt only when the version
# or pyproject.toml changes, and its own throwaway AIRFLOW_HOME. Exits non-zero when any
# version fails; prints one summary line per version at the end.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
DEFAULT_VERSIONS=${AIRFLOW_VERSIONS:-"2.11.2 3.0.6 3.3.2"}
MODE=full
PYTEST_ARGS=${PYTEST_ARGS:-}

FULL_TESTS=(tests/unit tests/emulator tests/integration)
# The smoke subset: files that exist are run, the dag.test() pick is narrowed with -k.
SMOKE_TESTS=(tests/unit/test_provider_info.py tests/unit/test_hook_endpoints.py tests/integration/test_example_dags.py)
SMOKE_K=${MATRIX_SMOKE_K:-"not integration or pipeline_dag"}

versions=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) MODE=smoke ;;
        --full) MODE=full ;;
        --install-only) MODE=install ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) versions+=("$1") ;;
    esac
    shift
done
[ ${#versions[@]} -gt 0 ] || read -r -a versions <<<"$DEFAULT_VERSIONS"

# Airflow pins its dependencies only through constraint files, which this script does not
# fetch; where a newer dependency breaks an older Airflow, the pin goes here.
pins_for() {
    case "$1" in
        # FastAPI 0.132+ rejects JSON bodies sent without a Content-Type header, as the
        # in-process Execution API client of Airflow 3.0 does (every dag.test() fails with 422).
        3.0.*) echo "fastapi[standard]<0.132" ;;
        # Airflow 3.2 caps neither: FastAPI 0.137+ fails to build its Execution API routes (a pydantic
        # discriminator error), and with svcs 26.2 its in-process Execution API (dag.test()) finds no
        # 'svcs_registry' on the app and answers every call with 500. Airflow 3.3 pins FastAPI below 0.137.
        3.2.*) echo "fastapi[standard-no-fastapi-cloud-cli]<0.137 svcs<26.2" ;;
    esac
}

venv_for() { # 2.11.2 -> .venv-2.11
    local v=$1
    echo ".venv-${v%.*}"
}

install_version() {
    local version=$1 venv stamp pins
    venv=$(venv_for "$version")
    pins=$(pins_for "$version")
    stamp="$venv/.installed-$version-$( (cat pyproject.toml; echo "$pins") | sha1sum | cut -c1-12)"
    if [ -f "$stamp" ]; then
        return 0
    fi
    echo "== installing Airflow $version into $venv"
    rm -rf "$venv"
    mkdir -p "$venv"
    local log="$venv/install.log"
    if ! { "$PYTHON" -m venv "$venv" &&
        "$venv/bin/python" -m pip install --quiet --upgrade pip &&
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install --quiet "apache-airflow==$version" $pins -e ".[test]"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        return 1
    fi
    rm -f "$log"
    touch "$stamp"
}

run_version() {
    local version=$1 venv home rc targets=() k=()
    venv=$(venv_for "$version")
    home=$(mktemp -d "${TMPDIR:-/tmp}/opsera-matrix-home-XXXXXX")
    if [ "$MODE" = smoke ]; then
        for t in "${SMOKE_TESTS[@]}"; do [ -e "$t" ] && targets+=("$t"); done
        k=(-k "$SMOKE_K")
    else
        for t in "${FULL_TESTS[@]}"; do [ -e "$t" ] && targets+=("$t"); done
    fi
    echo "== Airflow $version ($MODE): ${targets[*]}"
    # shellcheck disable=SC2086
    AIRFLOW_HOME="$home" AIRFLOW__CORE__LOAD_EXAMPLES=False \
        "$venv/bin/python" -m pytest -p no:cacheprovider -q "${targets[@]}" "${k[@]}" -m "not e2e and not browser" $PYTEST_ARGS
    rc=$?
    rm -rf "$home"
    # pytest exit 5: nothing collected (a subset not written yet) is not a failure of the matrix
    [ $rc -eq 5 ] && rc=0
    return $rc
}

summary=()
status=0
for version in "${versions[@]}"; do
    start=$(date +%s)
    if ! install_version "$version"; then
        summary+=("Airflow $version: INSTALL FAILED")
        status=1
        continue
    fi
    if [ "$MODE" = install ]; then
        summary+=("Airflow $version: installed ($(( $(date +%s) - start ))s)")
        continue
    fi
    if run_version "$version"; then
        summary+=("Airflow $version ($MODE): passed ($(( $(date +%s) - start ))s)")
    else
        summary+=("Airflow $version ($MODE): FAILED ($(( $(date +%s) - start ))s)")
        status=1
    fi
done

echo
echo "== matrix summary"
printf '%s\n' "${summary[@]}"
exit $status
