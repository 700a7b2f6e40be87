"""Page objects' common base: a portal page whose parts are found through the portal's selector table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from coupang_sales.errors import ExportFormatError
from coupang_sales.portal.settings import Locator

# Reads a whole table in one round trip: per-cell WebDriver calls cost a few ms each.
_READ_TABLE_JS = """
const table = arguments[0];
const text = (el) => el.textContent.replace(/\\s+/g, ' ').trim();
const heads = Array.from(table.querySelectorAll('thead th')).map(text);
const rows = Array.from(table.querySelectorAll('tbody tr')).map(
    (tr) => Array.from(tr.cells).map((td) => [text(td), td.colSpan]));
return [heads, rows];
"""


class Page:
    """A page of a portal, finding its parts through the portal's selector table."""

    name = "page"

    def __init__(self, driver: WebDriver, selectors: Mapping[str, Locator]):
        self.driver = driver
        self.selectors = selectors

    def find_all(self, key: str, within: WebElement | WebDriver | None = None) -> list[WebElement]:
        return (within or self.driver).find_elements(*self.selectors[key])

    def find(self, key: str, within: WebElement | WebDriver | None = None) -> WebElement:
        found = self.find_all(key, within)
        if not found:
            raise ExportFormatError(f"{self.name}: the page has no {key.split('.')[-1]} ({self.selectors[key][1]})")
        return found[0]

    def count(self, key: str) -> int:
        """A number shown as text ('총 1,234건'), as the total row count of a table."""
        text = self.find(key).text
        digits = re.sub(r"[^\d]", "", text)
        if not digits:
            raise ExportFormatError(f"{self.name}: the {key.split('.')[-1]} reads {text!r}, not a number")
        return int(digits)

    def read_table(self, key: str, required: tuple[str, ...]) -> list[dict[str, str]]:
        """The rows of a table keyed by header text, after checking the required headers."""
        heads, rows = self.driver.execute_script(_READ_TABLE_JS, self.find(key))
        return table_rows(self.name, heads, rows, required)


def table_rows(name: str, heads: list[str], rows: list, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of [text, colspan] cells keyed by header text (columns without a header dropped),
    after checking the ``required`` headers are there."""
    missing = [h for h in required if h not in heads]
    if missing:
        raise ExportFormatError(f"{name}: the table lacks the column(s) {', '.join(missing)}; "
                                f"it has {', '.join(h for h in heads if h)}")
    out = []
    for cells in rows:
        if len(cells) == 1 and cells[0][1] > 1:
            continue  # the '조회된 데이터가 없습니다' row spans the whole table
        if len(cells) != len(heads):
            raise ExportFormatError(f"{name}: a row has {len(cells)} cells under {len(heads)} headers")
        out.append({h: text for h, (text, _) in zip(heads, cells, strict=True) if h})
    return out
