"""A person-assisted sign-on into an account's browser profile.

    python -m coupang_sales.sign_in CHANNEL ACCOUNT [--conn-id ID] [--headless]

Opens the account's persistent profile (``coupang_sales.portal.profiles``), signs on with the
credentials of the account's Airflow connection and, when the portal asks for the SMS code
(인증번호), asks the person at the terminal for it, up to ``COUPANG_SIGN_IN_CODE_ATTEMPTS`` codes
(``coupang_sales.portal.assisted``, shared with the sign-in DAGs, where a Required Action in the
Airflow UI asks instead). The profile is left signed on and known to the portal as a device,
so the DAG's next runs sign on without the SMS step (or not at all while the session lives).
CHANNEL is ``coupang_rocket`` or ``coupang_jet`` (``rocket`` and ``jet`` do too); the connection
is the account's in ``sales.accounts`` unless ``--conn-id`` names it. The browser is headed unless
``--headless`` (the real portals reject headless Chrome; a person may also watch). The password
is never printed or asked for.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

CHANNEL_NAMES = {"rocket": "coupang_rocket", "jet": "coupang_jet",
                 "coupang_rocket": "coupang_rocket", "coupang_jet": "coupang_jet"}


def _conn_id(channel: str, account_id: str) -> str:
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook
    from coupang_sales.warehouse.runs import account_conn_id

    with WarehouseHook().connected() as conn:
        conn_id = account_conn_id(conn, channel=channel, account_id=account_id)
    if conn_id is None:
        raise SystemExit(f"{channel} {account_id} is not in sales.accounts (or give --conn-id)")
    return conn_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coupang_sales.sign_in", description=__doc__.split("\n\n")[0])
    parser.add_argument("channel", choices=sorted(CHANNEL_NAMES))
    parser.add_argument("account_id")
    parser.add_argument("--conn-id", help="the account's Airflow connection (default: from sales.accounts)")
    parser.add_argument("--headless", action="store_true", help="no browser window (the sandbox, tests)")
    args = parser.parse_args(argv)
    channel = CHANNEL_NAMES[args.channel]

    from coupang_sales.airflow_glue.hooks import portal_hook
    from coupang_sales.errors import CollectionError
    from coupang_sales.jet.channel import JET
    from coupang_sales.portal.assisted import assisted_sign_in, code_attempts
    from coupang_sales.rocket.channel import ROCKET

    conn_id = args.conn_id or _conn_id(channel, args.account_id)
    hook = portal_hook(ROCKET if channel == ROCKET.name else JET, conn_id)
    account = {"channel": channel, "account_id": args.account_id, "conn_id": conn_id}

    def ask_code(step) -> str:
        valid = f"; valid {step.valid_minutes} minutes" if step.valid_minutes else ""
        again = "That code was refused. " if step.refused else ""
        print(f"{again}The portal sent an SMS code (인증번호) to {step.sent_to} for {channel} {args.account_id}"
              f"{valid} (attempt {step.attempt} of {step.attempts}).", flush=True)
        print("SMS code: ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            raise SystemExit("no SMS code given (end of input); the profile is not signed on")
        return line.strip()

    os.environ["SELENIUM_HEADLESS"] = "true" if args.headless else "false"
    work = Path(tempfile.mkdtemp(prefix="coupang-sign-in-"))
    print(f"Opening the browser profile of {channel} {args.account_id} ...", flush=True)
    try:
        outcome = assisted_sign_in(hook, account, ask_code, attempts=code_attempts(), work_dir=work)
    except CollectionError as exc:
        print(f"Sign-on failed: {exc}", file=sys.stderr, flush=True)
        return 1
    signed_on = outcome.signed_on
    if signed_on:
        steps = " after the SMS step" if outcome.sms_steps else ""
        print(f"Signed on{steps}: the profile of {channel} {args.account_id} stays signed on; "
              "the next runs reuse it.", flush=True)
    else:
        print(f"The profile of {channel} {args.account_id} was still signed on; nothing to do.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
