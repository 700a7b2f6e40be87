"""What both portals share: the browser, the sign-on, the in-page fetch; no Airflow."""
