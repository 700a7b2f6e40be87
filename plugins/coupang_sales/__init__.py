"""Collection of Coupang Rocket (Supplier Hub) and Coupang Jet (Wing) sales into PostgreSQL.

The domain modules (channels, exports, portals, quality, warehouse) never import
Airflow; the Airflow glue lives in ``coupang_sales.airflow_glue``.
"""
