"""Airflow glue: hooks, operators, notifiers and the DAG builder (thin; logic lives in the domain modules)."""
