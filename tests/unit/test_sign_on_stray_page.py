"""The sign-on's first look at the portal's home: a stray page is asked for again once, a second is a changed page."""

from __future__ import annotations

import pytest

from coupang_sales.errors import ExportFormatError
from coupang_sales.portal.sign_on import SignOn


class Settings:
    def path(self, name):
        return {"home": "/home"}[name]


class Session(SignOn):
    """SignOn with the session's navigation and waits replaced by a script of what each wait shows."""

    portal_name, base_url, settings = "portal", "http://portal.test", Settings()

    def __init__(self, shows):
        self.shows, self.visited, self.landings = list(shows), [], 0

    def _get(self, url, page):
        self.visited.append(url)

    def _wait_for(self, page, expected, *, sign_on=False):
        shown = self.shows.pop(0)
        if shown == "stray":
            raise ExportFormatError(f"{page}: none of the expected parts ({', '.join(expected)}) is on the page")
        return shown

    def _signed_on(self):
        self.landings += 1


def test_a_stray_page_on_the_first_look_is_asked_for_again(caplog):
    session = Session(["stray", "home"])
    assert session.resume() is True
    assert session.visited == ["http://portal.test/home"] * 2 and session.landings == 1
    assert "asking for the portal's home again" in caplog.text


def test_a_second_stray_page_is_a_changed_page():
    session = Session(["stray", "stray"])
    with pytest.raises(ExportFormatError, match="none of the expected parts"):
        session.resume()
    assert len(session.visited) == 2


def test_the_form_is_not_asked_for_again():
    session = Session(["form"])
    assert session.resume() is False and session.visited == ["http://portal.test/home"]
