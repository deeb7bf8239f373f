"""Stable pseudonymous ids for exports: a keyed HMAC of what is being named, with a key per study.

The same learner gets the same id in every export of one study (so exports can be joined) and unrelated ids in
another study's (so two studies cannot be linked without the secret). Ids are at most 55 characters, DataShop's
limit for `Anon Student Id`, and carry a short prefix that says what they name (`stu_`, `ses_`, `cls_`).
"""

import hashlib
import hmac

from django.conf import settings

ID_HEX_CHARACTERS = 32  # 128 bits of the HMAC: collisions are out of reach for any class or course
MAX_ID_LENGTH = 55


def export_secret() -> bytes:
    """The deployment's export secret (TUTOR_EXPORT_SECRET, else the Django secret key)."""
    return (getattr(settings, "TUTOR_EXPORT_SECRET", "") or settings.SECRET_KEY).encode()


class Pseudonyms:
    """Pseudonyms for one study. `learner(pk)` is cached: exports meet the same learner on many rows."""

    def __init__(self, study: str = "default", secret: bytes | None = None):
        self.study = study
        self._key = hmac.new(
            secret or export_secret(), b"tutor-export-study:" + study.encode(), hashlib.sha256
        ).digest()
        self._cache: dict[tuple[str, int], str] = {}

    def of(self, kind: str, pk: int | None) -> str:
        if pk is None:
            return ""
        key = (kind, pk)
        found = self._cache.get(key)
        if found is None:
            digest = hmac.new(self._key, f"{kind}:{pk}".encode(), hashlib.sha256).hexdigest()
            found = self._cache[key] = f"{kind}_{digest[:ID_HEX_CHARACTERS]}"
            if len(self._cache) > 100_000:  # bounded: the log is read in learner order, so old entries are done
                self._cache.clear()
                self._cache[key] = found
        return found

    def learner(self, pk: int) -> str:
        return self.of("stu", pk)

    def session(self, pk: int) -> str:
        return self.of("ses", pk)

    def classroom(self, pk: int | None) -> str:
        return self.of("cls", pk)
