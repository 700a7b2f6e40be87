"""Which shard collects an account: a stable hash of its id, so thousands of accounts split over several DAGs.

A channel's accounts are split over ``shards`` DAGs (``COUPANG_<CHANNEL>_SHARDS``, see
``airflow_glue.dag_factory``), each mapping at most ``[core] max_map_length`` accounts.
The shard of an account depends only on its id and the number of shards, never on the
order of ``sales.accounts`` or on which other accounts exist: adding an account moves no
other. The hash is Lamping and Veach's jump consistent hash (arXiv:1406.2294) over the
first 8 bytes of the id's SHA-256, so going from N to N + 1 shards moves only about
1 / (N + 1) of the accounts (a modulo would move most of them), and all of them to the new shard.
"""

from __future__ import annotations

import hashlib

_MASK = (1 << 64) - 1


def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash of a 64-bit ``key`` into ``range(buckets)``."""
    if buckets < 1:
        raise ValueError(f"the number of shards must be at least 1, not {buckets}")
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & _MASK
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shard_of(account_id: str, shards: int) -> int:
    """The shard (0 .. shards - 1) that collects ``account_id``."""
    key = int.from_bytes(hashlib.sha256(account_id.encode("utf-8")).digest()[:8], "big")
    return jump_hash(key, shards)
