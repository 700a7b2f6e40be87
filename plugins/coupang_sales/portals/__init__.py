"""Browser sessions and page objects of the Coupang portals (Selenium, no Airflow)."""

from coupang_sales.portals.browser import open_browser
from coupang_sales.portals.supplier_hub import SubAccount, SupplierHubSession
from coupang_sales.portals.wing import WingSession

__all__ = ["SubAccount", "SupplierHubSession", "WingSession", "open_browser"]
