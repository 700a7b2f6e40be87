"""Persistent browser profiles, one per account: the device the portals know, kept signed on between tasks.

Sign-ons are the scarce resource (REAL-PORTALS.md §1-2): each meets a ~16 s bot challenge, a
new device meets the SMS step, and only one seller may be signed on at a time. So every
account gets its own Chromium user-data dir under ``COUPANG_PROFILE_DIR`` (default
``$AIRFLOW_HOME/browser-profiles``): ``<root>/<channel>/<account_id>``. Its persistent cookies
(the realm's device trust, the bot sensor's) outlive the browser; the live portals' sessions are
browser-session cookies and do not (REAL-PORTALS.md §6), except in a Chrome that outlives the task.

- Readable by its owner only (0700): it holds live session cookies.
- Locked while a browser uses it (``fcntl.flock`` on ``<root>/<channel>/.<account_id>.lock``,
  beside the profile so Chromium never sees it): a second user waits up to ``wait_seconds``,
  then fails with ``profile_busy`` (retried). Chromium would refuse a profile in use anyway,
  with a less clear error.
- Never logged or staged: only its account names it in messages.
- Removed with the account: ``python -m coupang_sales.portal.profiles remove CHANNEL ACCOUNT``.
- Its password sign-ons are noted beside it (``<root>/<channel>/.<account_id>.password-sign-on``,
  the time only): a sign-on ends every other seller's session from the same address, so a
  profile that never signed on, or whose channel saw another account sign on since, is known
  to be signed out without starting a browser (``signed_out_for_sure``).

With a Selenium Grid the path is the node's: mount the same volume at the same path on the
workers (for the lock) and on the nodes (for Chromium), as docker-compose.yaml does.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from coupang_sales.errors import CollectionError

log = logging.getLogger(__name__)

SIGN_ON_SUFFIX = ".password-sign-on"
DEFAULT_WAIT_SECONDS = 600.0  # a task holding the profile takes minutes; after this the retry waits again


def profile_root() -> Path:
    """``COUPANG_PROFILE_DIR``, default ``$AIRFLOW_HOME/browser-profiles``."""
    return Path(os.environ.get("COUPANG_PROFILE_DIR")
                or Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "browser-profiles")


def _safe(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)).lstrip(".")
    if not safe:
        raise CollectionError("configuration_error", f"no profile name can be made of {name!r}")
    return safe


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


class BrowserProfile:
    """The browser profile of one account; ``acquire()`` / ``release()`` (or ``with``) hold its lock."""

    def __init__(self, channel: str, account_id: str, *, root: Path | None = None,
                 wait_seconds: float | None = None):
        self.channel, self.account_id = channel, account_id
        self.root = Path(root) if root else profile_root()
        self.path = self.root / _safe(channel) / _safe(account_id)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.sign_on_path = self.path.with_name(f".{self.path.name}{SIGN_ON_SUFFIX}")
        self.wait_seconds = DEFAULT_WAIT_SECONDS if wait_seconds is None else float(wait_seconds)
        self._lock_file = None

    def __repr__(self) -> str:
        return f"BrowserProfile({self.channel!r}, {self.account_id!r})"

    @property
    def held(self) -> bool:
        return self._lock_file is not None

    def acquire(self, wait_seconds: float | None = None) -> Path:
        """Lock the profile (waiting for another user up to ``wait_seconds``) and return its folder, 0700."""
        if self.held:
            return self.path
        wait = self.wait_seconds if wait_seconds is None else wait_seconds
        _private_dir(self.root)
        _private_dir(self.path.parent)
        handle = open(self.lock_path, "a+")  # noqa: SIM115 (held until release)
        try:
            Retrying(retry=retry_if_exception_type(BlockingIOError), stop=stop_after_delay(wait),
                     wait=wait_fixed(0.2), reraise=True)(fcntl.flock, handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise CollectionError(
                "profile_busy", f"the browser profile of {self.channel} {self.account_id} is in use by "
                                f"another task or a person's sign-on; waited {wait:g} s") from None
        self._lock_file = handle
        _private_dir(self.path)
        return self.path

    def release(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> Path:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def note_password_sign_on(self) -> None:
        """Note that a password was just submitted in this profile (when, nothing else): from now on
        the channel's other profiles on this machine count as signed out."""
        _private_dir(self.path.parent)
        partial = self.sign_on_path.with_name(self.sign_on_path.name + ".partial")
        partial.write_text(str(time.time_ns()), encoding="ascii")
        partial.replace(self.sign_on_path)  # whole or absent, never half-written

    @staticmethod
    def _noted(path: Path) -> int:
        """The time noted in ``path``, 0 if none."""
        try:
            return int(path.read_text(encoding="ascii") or 0)
        except (OSError, ValueError):
            return 0

    def signed_out_for_sure(self, *, one_seller_per_address: bool = True) -> str | None:
        """Why this profile cannot be signed on, known without a browser; None when only the portal can
        tell (its session may live, or may have expired).

        - It never submitted a password (a profile signed on by hand elsewhere has no note either:
          it is then treated as signed out, which costs no sign-on, since the extract lands first).
        - ``one_seller_per_address``: another account of the channel submitted its password on
          this machine since (only one seller is signed on at a time from an address).
        """
        own = self._noted(self.sign_on_path)
        if not own:
            return "no password sign-on recorded in this profile"
        if one_seller_per_address:
            for other in self.sign_on_path.parent.glob(f".*{SIGN_ON_SUFFIX}"):
                if other != self.sign_on_path and self._noted(other) > own:
                    return "another account signed on from this machine since"
        return None

    def remove(self, wait_seconds: float = 0.0) -> bool:
        """Delete the profile (under its lock: never under a running browser); True if there was one."""
        existed = self.path.exists()
        self.acquire(wait_seconds)
        try:
            shutil.rmtree(self.path, ignore_errors=False)
        except FileNotFoundError:
            pass
        finally:
            self.release()
        self.lock_path.unlink(missing_ok=True)
        self.sign_on_path.unlink(missing_ok=True)
        return existed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coupang_sales.portal.profiles",
                                     description="Manage the accounts' persistent browser profiles.")
    sub = parser.add_subparsers(dest="command", required=True)
    remove = sub.add_parser("remove", help="delete an account's profile (do it when the account is removed)")
    remove.add_argument("channel", help="coupang_rocket or coupang_jet")
    remove.add_argument("account_id")
    remove.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a browser using it")
    args = parser.parse_args(argv)
    profile = BrowserProfile(args.channel, args.account_id)
    try:
        existed = profile.remove(args.wait)
    except CollectionError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print(f"removed the browser profile of {args.channel} {args.account_id}" if existed
          else f"{args.channel} {args.account_id} had no browser profile")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
