"""Which users a run touches: streamed in batches by ascending user id (keyset pagination, so
memory stays flat however many users there are), narrowed by --user and by --percent.

--percent uses a stable hash bucket per user (0-9999): a user whose bucket is below P x 100 is
in. The bucket never changes, so 5, then 25, then 100 each include the users of the stages
before.
"""

import hashlib
from collections.abc import Iterator
from decimal import Decimal

from migrations_app.sources import Source

BUCKETS = 10_000


def bucket(user_id: int) -> int:
    digest = hashlib.sha256(f"credits-migration:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_percent(user_id: int, percent: Decimal) -> bool:
    return percent >= 100 or bucket(user_id) < percent * BUCKETS / 100


def candidate_batches(
    source: Source,
    *,
    batch_size: int,
    user_ids: list[int] | None = None,
    percent: Decimal = Decimal(100),
) -> Iterator[list[int]]:
    candidates = source.candidate_ids()
    if user_ids is not None:
        candidates = candidates.filter(user_id__in=user_ids)
    last = None
    while True:
        page = candidates if last is None else candidates.filter(user_id__gt=last)
        chunk = list(page[:batch_size])
        if not chunk:
            return
        last = chunk[-1]
        chunk = [user_id for user_id in chunk if in_percent(user_id, percent)]
        if chunk:
            yield chunk


def count_candidates(source: Source, **selection) -> int:
    return sum(len(chunk) for chunk in candidate_batches(source, batch_size=5000, **selection))
