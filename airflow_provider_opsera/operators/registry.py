"""Operator that changes root properties of a tool in Opsera's tool registry, showing what it changes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import BaseOperator, mask_secret
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.exceptions import OpseraError, OpseraInputError
from airflow_provider_opsera.writing import record_checks
from airflow_provider_opsera.writing.diffing import diff_root_properties, json_equal, render, secret_strings

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook

    try:
        from airflow.sdk.definitions.context import Context
    except ImportError:
        from airflow.utils.context import Context  # type: ignore[no-redef]

PREVIOUS_VALUES_XCOM_KEY = "previous_values"
MIN_SECRET_LENGTH = 5


class OpseraUpdateToolError(OpseraError):
    """Opsera accepted a tool update but reading the tool back shows other values."""


class OpseraUpdateToolOperator(BaseOperator):
    """Change root properties of a tool in Opsera's tool registry, sending only what differs.

    The operator reads the tool, logs a diff of the properties that change (values under
    secret-looking keys such as ``password``, ``secretKey`` or ``token`` shown as ``***``), sends
    only the changed properties, then reads the tool again and fails if any of them did not take.
    When nothing differs nothing is sent.

    Opsera replaces a root property as a whole: to change ``configuration.jenkinsUrl``, send the
    complete ``configuration`` object. An update that would drop a nested key the tool holds (say
    ``configuration.secretKey``, left out of the new ``configuration``) fails naming the keys and
    sends nothing, unless ``allow_removing_keys=True``. A root key the tool does not have and tools
    do not carry (a typo such as ``configuraton``) fails too, naming the closest known key, unless
    ``allow_unknown_fields=True``. A dry run fails the same way, so it tells whether the update would.

    Before sending, the previous values of the changed properties are pushed to XCom under
    ``previous_values``; feeding that dict back as ``tool`` reverts the change (a property the
    tool did not have is reverted to ``null``; a revert that drops keys the update added needs
    ``allow_removing_keys=True``). These values are the tool's real values, secrets
    included (Opsera keeps credentials as vault references); the secrets masker is told about
    them so they do not appear in logs.

    :param tool_id: the tool's 24-character id. Templated.
    :param tool: the root properties to change, e.g. ``{"description": "..."}``. ``_id`` cannot be
        changed; ``createdAt``/``updatedAt`` are left out with a warning. Templated. Both are checked when
        the DAG is parsed (an empty ``tool`` is refused then), or once rendered.
    :param dry_run: only show the diff; send nothing and return the changes that would be sent.
    :param allow_removing_keys: let the update drop nested keys the tool holds (they are named in the log).
    :param allow_unknown_fields: send root keys the tool does not have and tools do not carry (with a warning).
    :param opsera_conn_id: the Opsera connection (its token needs the ``api`` or ``registry`` scope).
    :return: the tool as Opsera holds it after the update (or the would-be changes for a dry run).
    """

    template_fields: Sequence[str] = ("tool_id", "tool")
    template_fields_renderers = {"tool": "json"}
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        tool_id: str,
        tool: dict[str, Any] | str,
        dry_run: bool = False,
        allow_removing_keys: bool = False,
        allow_unknown_fields: bool = False,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # checked when the DAG is parsed, templates once rendered; nothing is read from Opsera here
        self.tool_id = validation.checked_at_parse(lambda value: validation.object_id(value, "tool_id"), tool_id)
        known_id = None if validation.rendered_later(self.tool_id) else self.tool_id
        validation.checked_at_parse(lambda value: record_checks.tool_update(value, known_id), tool)
        self.tool = tool
        self.dry_run = dry_run
        self.allow_removing_keys = allow_removing_keys
        self.allow_unknown_fields = allow_unknown_fields
        self.opsera_conn_id = opsera_conn_id

    @cached_property
    def hook(self) -> OpseraHook:
        from airflow_provider_opsera.hooks.opsera import OpseraHook

        return OpseraHook(opsera_conn_id=self.opsera_conn_id)

    def execute(self, context: Context) -> Any:
        tool_id = validation.object_id(self.tool_id, "tool_id")
        wanted, dropped = record_checks.tool_update(self.tool, tool_id)
        if dropped:
            self.log.warning("Leaving out %s: Opsera sets these itself.", ", ".join(dropped))

        current = self.hook.get_tool(tool_id)
        if not isinstance(current, dict):
            raise OpseraError(
                f"Opsera answered the summary of tool {tool_id} with {type(current).__name__}, not a tool object"
            )
        for secret in {*secret_strings(current), *secret_strings(wanted)}:
            if len(secret) >= MIN_SECRET_LENGTH:  # masking "true" or "443" everywhere would garble logs
                mask_secret(secret)
        for warning in record_checks.tool_root_keys(wanted, current, allow_unknown=self.allow_unknown_fields):
            self.log.warning(warning)
        diff = diff_root_properties(current, wanted)
        title = f"tool {tool_id} ({current.get('name', 'unnamed')})"

        if diff.empty:
            self.log.info("%s already holds the requested %s: nothing to send.", title, ", ".join(diff.unchanged))
            if self.dry_run:
                return {}
            context["ti"].xcom_push(key=PREVIOUS_VALUES_XCOM_KEY, value={})
            return current

        self.log.info(
            "%s %s:\n%s",
            "Dry run, would change" if self.dry_run else "Changing",
            title,
            "\n".join(f"  {line}" for line in diff.lines),
        )
        if diff.unchanged:
            self.log.info("Already as requested, not sent: %s", ", ".join(diff.unchanged))
        removing = ", ".join(diff.removed_keys)
        if diff.removed_keys and not self.allow_removing_keys:
            raise OpseraInputError(
                f"The update of {title} would remove {removing}: Opsera replaces a root property as a "
                "whole, and the new value leaves them out. Nothing was sent. Include them in the new value "
                "to keep them, or pass allow_removing_keys=True to remove them."
            )
        if self.dry_run:
            if diff.removed_keys:
                self.log.warning("Dry run: the update would remove %s (allow_removing_keys=True).", removing)
            self.log.info("Dry run: nothing was sent to Opsera.")
            return dict(diff.changed)

        # Pushed before sending, so a revert is possible whatever happens to the update.
        context["ti"].xcom_push(key=PREVIOUS_VALUES_XCOM_KEY, value=diff.previous)
        self.hook.update_tool(tool_id, diff.changed)
        after = self.hook.get_tool(tool_id)
        self._verify(tool_id, diff.changed, after)
        if diff.removed_keys:
            self.log.warning("Removed %s from %s (allow_removing_keys=True).", removing, title)
        self.log.info(
            "Updated %s: %s. Read back and verified; previous values are in XCom %r.",
            title,
            ", ".join(diff.changed),
            PREVIOUS_VALUES_XCOM_KEY,
        )
        return after

    @staticmethod
    def _verify(tool_id: str, sent: dict[str, Any], after: Any) -> None:
        after = after if isinstance(after, dict) else {}
        wrong = [key for key, value in sent.items() if not json_equal(after.get(key), value)]
        if wrong:
            details = "; ".join(
                f"{key}: sent {render(sent[key], key)}, Opsera holds {render(after.get(key), key)}" for key in wrong
            )
            raise OpseraUpdateToolError(
                f"Opsera accepted the update of tool {tool_id}, but reading it back shows other values: "
                f"{details}. The previous values are in XCom {PREVIOUS_VALUES_XCOM_KEY!r}."
            )
