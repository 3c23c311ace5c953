"""Apache Airflow provider for Opsera.

Kept free of imports: the DAG processor imports provider packages on every parse.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
