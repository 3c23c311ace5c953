"""``opsera-doctor --conn-id opsera_default [--pipeline-id ID | --pipeline-name NAME] [--task-id ID] [--show-values]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airflow_provider_opsera.doctor.report import EXIT_CANNOT_RUN, CannotRun

EPILOG = """Exit status: 0 every fact confirmed or not checkable, 1 something differs, 2 the doctor could not run.
The output names fields and their types only; it never shows the token. Send it to the provider's maintainers."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="opsera-doctor",
        description="Check, with read calls only, the facts this provider infers about Opsera's API on your tenant.",
        epilog=EPILOG,
    )
    parser.add_argument("--conn-id", default="opsera_default", help="the Airflow connection (default: %(default)s)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--pipeline-id", help="the pipeline to examine (default: the visible one with the most runs)")
    which.add_argument("--pipeline-name", help="the pipeline to examine, by name (needs the Power User role)")
    parser.add_argument("--task-id", help="the Opsera task to examine (default: the first the task list shows)")
    parser.add_argument(
        "--show-values", action="store_true", help="also print the values of the fields read (secrets stay masked)"
    )
    return parser.parse_args(argv)


def make_hook(conn_id: str):
    from airflow_provider_opsera.hooks.opsera import OpseraHook
    from airflow_provider_opsera.hooks.retry import RetryPolicy

    # a person is waiting: a few quick retries, not the minutes a task may spend on them
    return OpseraHook(conn_id, retry_policy=RetryPolicy(max_attempts=3, max_wait=5, total=30))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from airflow_provider_opsera.doctor.checks import Doctor

    hook = make_hook(args.conn_id)
    doctor = Doctor(
        hook,
        pipeline_id=args.pipeline_id,
        pipeline_name=args.pipeline_name,
        task_id=args.task_id,
        show_values=args.show_values,
    )
    try:
        report = doctor.run()
    except CannotRun as error:
        print(without_token(f"opsera-doctor could not run: {error}", hook), file=sys.stderr)
        return EXIT_CANNOT_RUN
    finally:
        hook.close()
    for line in report.lines():
        print(without_token(line, hook))
    return report.exit_code


def without_token(text: str, hook: object) -> str:
    """A last guard: the token never leaves, whatever a message quoted."""
    settings = getattr(hook, "__dict__", {}).get("settings")
    token = getattr(settings, "token", "")
    return text.replace(token, "***") if token else text


if __name__ == "__main__":
    sys.exit(main())
