"""Coupang Rocket end to end (Supplier Hub pages, the policy, its quality suite, the stages); no Airflow."""
