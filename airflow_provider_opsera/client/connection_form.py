"""The "Opsera" connection form: declared once, read by the provider info and the hook."""

from __future__ import annotations

from typing import Any

CONN_TYPE = "opsera"
HOOK_NAME = "Opsera"

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "portal_url": {
        "label": "Portal URL",
        "description": "Opsera portal base URL, used for the links to pipeline runs in Airflow's UI.",
        "schema": {"type": ["string", "null"], "format": "url"},
    },
    "auth_prefix": {
        "label": "Authorization prefix",
        "description": "Word before the token in the Authorization header (default Bearer). Write none to send the raw token.",
        "schema": {"type": ["string", "null"], "default": "Bearer"},
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "description": "Seconds to wait for each HTTP answer from Opsera.",
        "schema": {"type": ["integer", "null"], "default": 30, "minimum": 1},
    },
    "verify": {
        "label": "Verify TLS certificate",
        "description": "Turn off only for a test tenant with a self-signed certificate.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "allow_plain_http": {
        "label": "Allow plain HTTP",
        "description": "Send the token over http:// to a host off this machine, only behind a TLS-terminating proxy "
        "or sidecar on purpose. Loopback hosts (the emulator) need no such permission.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "proxies": {
        "label": "Proxies (JSON)",
        "description": 'HTTP(S) proxies as JSON, e.g. {"https": "http://proxy.example.com:3128"}.',
        "schema": {"type": ["string", "null"], "format": "json"},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"host": "Opsera API URL", "password": "Personal access token"},
    "placeholders": {
        "host": "https://app.opsera.io",
        "password": "eyJ... (the Opsera personal access token alone, without Bearer)",
        "extra": '{"portal_url": "https://portal.opsera.io"}',
        "portal_url": "https://portal.opsera.io",
        "auth_prefix": "Bearer",
        "timeout": "30",
        "verify": "true",
        "allow_plain_http": "false",
        "proxies": '{"https": "http://proxy.example.com:3128"}',
    },
}

# How messages name the two settings a pasted "Bearer eyJ…" mixes up, with the labels the form shows.
PASSWORD_FIELD = f"the Password field (\"{UI_FIELD_BEHAVIOUR['relabeling']['password']}\" in the connection form)"
AUTH_PREFIX_EXTRA = f"the auth_prefix extra (\"{CONN_FIELDS['auth_prefix']['label']}\")"


def legacy_ui_field_behaviour() -> dict[str, Any]:
    """The same behaviour in the shape ``BaseHook.get_ui_field_behaviour`` returns (Airflow < 3.2)."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }


def legacy_form_widgets() -> dict[str, Any]:
    """The fields as WTForms fields, for ``BaseHook.get_connection_form_widgets`` (Airflow < 3.2)."""
    # Airflow accepts only these field classes in a connection form.
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import NumberRange, Optional

    try:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget

        text_widget: dict[str, Any] = {"widget": BS3TextFieldWidget()}
    except ImportError:  # Airflow 3 renders the form itself and ignores the widget
        text_widget = {}
    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        kinds = spec["schema"]["type"]
        label, description = spec["label"], spec.get("description")
        default = spec["schema"].get("default")
        if "boolean" in kinds:
            widgets[name] = BooleanField(label, description=description, default=default)
        elif "integer" in kinds:
            widgets[name] = IntegerField(
                label, description=description, default=default, validators=[Optional(), NumberRange(min=1)], **text_widget
            )
        else:
            widgets[name] = StringField(label, description=description, default=default, **text_widget)
    return widgets
