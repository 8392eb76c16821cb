"""Retention on AWS, from the campaigns' own settings (`retention:` in each template): the
stack reads the campaigns it deploys for and applies the shortest period of each kind to the
shared stores, since one bucket and one table hold every campaign's data.

- events: the Events table's TTL attribute `expires_at` (DynamoEventStore writes it when the
  functions get REEL_EVENT_TTL_DAYS);
- media: S3 lifecycle rules expiring personal videos, posters, email GIFs and personal stream
  chunks (`videos/`, `posters/`, `thumbnails/`, `hls/p/`), and their noncurrent versions;
- records: `reel sweep` erases stale records on the local backend; on AWS the same sweep is
  a service function (services/privacy.sweep) to run on a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chalicelib.errors import TemplateError
from chalicelib.template.library import load_template

#: Where personal media lives in the bucket (the shared static segments and chunks do not).
PERSONAL_MEDIA_PREFIXES = ("videos/", "posters/", "thumbnails/", "hls/p/")


@dataclass(frozen=True)
class Retention:
    """The shortest period of each kind among the campaigns (days; None: kept until erased)."""

    events: int | None = None
    media: int | None = None
    records: int | None = None


def _shortest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def campaigns_retention(root: Path) -> Retention:
    """The retention of the campaigns under `root` (folders holding a template.yaml, up to two
    levels down). A campaign whose template does not load fails the synth (TemplateError)."""
    found = Retention()
    for path in sorted([*root.glob("template.y*ml"), *root.glob("*/template.y*ml"),
                        *root.glob("*/*/template.y*ml")]):  # fmt: skip
        try:
            keep = load_template(path).template.retention
        except TemplateError as exc:
            raise TemplateError(f"{path}: {exc}", problems=exc.problems) from exc
        found = Retention(
            events=_shortest(found.events, keep.days("events")),
            media=_shortest(found.media, keep.days("media")),
            records=_shortest(found.records, keep.days("records")),
        )
    return found
