"""The project's Airflow plugin: the "Coupang collections" status page (with its "Sign in" action) in the
Airflow UI, the DAGs' timetable and the listeners that note each run's Seoul dates and, when a run ends,
label its mapped task instances by account and note each seller's action on its task.

Airflow 3.1+ plugin points: ``fastapi_apps`` mounts the page's FastAPI app in the API server
under ``/coupang-collections`` (the app itself requires Airflow's sign-in), and ``external_views``
puts it in the UI's Browse menu, embedded at ``/plugin/coupang-collections``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from coupang_sales.airflow_glue import notes, ti_notes
from coupang_sales.airflow_glue.timetable import SeoulDailyTimetable


class CoupangSalesPlugin(AirflowPlugin):
    name = "coupang_sales"
    timetables = [SeoulDailyTimetable]  # the DAGs' schedule: runs named by the Seoul date they collect
    listeners = [notes, ti_notes]  # a run's note (its Seoul dates); at its end, account labels and seller notes

    @property
    def fastapi_apps(self):  # imported when the API server asks, not by every process that loads plugins
        from coupang_sales.airflow_glue.sign_in_action import status_app
        from coupang_sales.airflow_glue.status_page import TITLE, URL_PREFIX

        return [{"app": status_app(), "url_prefix": URL_PREFIX, "name": TITLE}]

    external_views = [{
        "name": "Coupang collections",
        "href": "coupang-collections/",   # relative to the UI's base URL, so a proxy's base path works
        "url_route": "coupang-collections",
        "destination": "nav",
        "category": "browse",
    }]
