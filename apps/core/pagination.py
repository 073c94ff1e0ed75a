from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_PAGE_SIZE = 500


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` is capped: a list never returns the whole table in one response."""

    default_limit = 50
    max_limit = MAX_PAGE_SIZE
