"""Check a portal export a person downloaded with the parser the DAG uses (``python -m coupang_sales.check_export``).

Prints one JSON object ``{"kind": ..., "rows": <data rows read>, "sums": {<export column>: <integer won>}}``
and exits 0; a file the parser refuses prints the project's own error (naming the file, sheet,
row or column) on stderr and exits 1. Imports nothing of Airflow: run it from the project's
``.venv`` with ``PYTHONPATH=plugins``. It is the first step when a portal changes an export.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coupang_sales.errors import CollectionError, ExportFormatError

# KIND -> a function reading one file into {"rows": int, "sums": {column: int}}.
# Each channel registers its kinds here; the functions live with the channel's parser.
Checker = Callable[[Path], dict[str, Any]]


def _kinds() -> dict[str, Checker]:
    from coupang_sales.jet import reports as jet_reports
    from coupang_sales.rocket.policy import check_receive_detail_export

    return {
        "rocket-receive-detail": check_receive_detail_export,
        "jet-category-tr": jet_reports.check_category_tr,
        "jet-warehousing-shipping": jet_reports.check_warehousing_shipping,
    }


def main(argv: list[str] | None = None) -> int:
    kinds = _kinds()
    parser = argparse.ArgumentParser(prog="python -m coupang_sales.check_export",
                                     description="Check a downloaded portal export with the DAG's parser.")
    parser.add_argument("kind", choices=sorted(kinds), help="which export the file is")
    parser.add_argument("file", type=Path, help="the downloaded file")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 1
    try:
        summary = kinds[args.kind](args.file)
    except (ExportFormatError, CollectionError) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"kind": args.kind, **summary}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
