"""Time passes in a DAG test: the sandbox lists what exists by its ``today``, and the DAG's today follows."""

from __future__ import annotations

import json
import urllib.request


def move_today(portal, monkeypatch, today: str) -> None:
    """Move the running sandbox's clock (``POST /__sandbox__/today``) and the DAG's (``COUPANG_TODAY``) to ``today``."""
    request = urllib.request.Request(f"{portal.url}/__sandbox__/today", data=json.dumps({"today": today}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response) == {"today": today}
    monkeypatch.setenv("COUPANG_TODAY", today)
