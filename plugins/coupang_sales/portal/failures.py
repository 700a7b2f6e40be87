"""How a portal session's failures are told: categories, URLs cut to what messages may show, one step's errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from selenium.common.exceptions import TimeoutException, WebDriverException

from coupang_sales.errors import CollectionError

T = TypeVar("T")


def unavailable(message: str) -> CollectionError:
    return CollectionError("portal_unavailable", message)


def url_path(url: str) -> str:
    """A URL reduced to its path, the only part that goes into messages."""
    return urlsplit(url).path or "/"


def step(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn browser failures of one step of a ``PortalSession`` into CollectionErrors and keep artifacts of
    any failure (``_save_artifacts``)."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            try:
                return method(self, *args, **kwargs)
            except CollectionError:
                self._save_artifacts(name)
                raise
            except TimeoutException:
                self._save_artifacts(name)
                raise unavailable(f"{name}: {self.portal_name} did not answer within {self.timeout:g} s") from None
            except WebDriverException as exc:
                self._save_artifacts(name)
                first_line = (exc.msg or type(exc).__name__).splitlines()[0]
                raise unavailable(f"{name}: browser error: {first_line}") from None
            except Exception:
                self._save_artifacts(name)
                raise

        return wrapper

    return decorate
