"""Benchmarks of airflow-provider-opsera against the dbt Cloud provider; see BENCHMARKS.md."""
