"""A local Opsera API for offline DAG development and tests.

Run it with ``python -m airflow_provider_opsera.emulator`` (see README.md), or in
a test with ``OpseraEmulator``. Importing this package does not import aiohttp.
"""

from .harness import OpseraEmulator

__all__ = ["OpseraEmulator"]
