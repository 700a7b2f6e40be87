"""Coupang Jet end to end (Wing, the v1 and v2 policies, their quality suites, the stages); no Airflow."""
