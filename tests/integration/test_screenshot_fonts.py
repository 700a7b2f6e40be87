"""Failure screenshots of the portals' Korean pages must show text: Chromium needs a Korean font."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_headless_chromium_draws_korean_glyphs_not_boxes(tmp_path):
    """Each Hangul syllable drawn as a distinct glyph. Without a Korean font Chromium draws every
    one as the same empty box (tofu), so two different syllables give identical pictures."""
    import base64

    from selenium.webdriver.common.by import By

    from coupang_sales.portal.browser import open_browser

    page = ("<html><body style='margin:0;background:#fff'>"
            + "".join(f"<p><span id='s{i}' style='font:48px sans-serif;color:#000'>{text}</span></p>"
                      for i, text in enumerate(("가", "나", "세금계산서")))
            + "</body></html>")
    driver = open_browser(tmp_path / "downloads")
    try:
        driver.get("data:text/html;charset=utf-8;base64," + base64.b64encode(page.encode()).decode())
        shots = [driver.find_element(By.ID, f"s{i}").screenshot_as_png for i in range(3)]
    finally:
        driver.quit()
    assert shots[0] != shots[1], "가 and 나 are drawn alike: Chromium has no Korean font (install fonts-noto-cjk)"
    assert shots[2] != shots[0], "a word and a syllable drawn alike"
