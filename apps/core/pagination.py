from __future__ import annotations

from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from apps.core.exceptions import ValidationFailed

MAX_PAGE_SIZE = 500


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` is capped: a list never returns the whole table in one response.

    A `limit` or `offset` that is not a number is a 400 (DRF quietly ignores it): the
    schema says integers, and a client that sent something else gets told, not a page
    it did not ask for.
    """

    default_limit = 50
    max_limit = MAX_PAGE_SIZE

    def _integer(self, request: Request, name: str, minimum: int) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        try:
            if len(values) > 1:
                raise ValueError
            value = int(values[0])
        except ValueError:
            raise ValidationFailed(fields={name: [f"An integer, at least {minimum}."]}) from None
        if value < minimum:
            raise ValidationFailed(fields={name: [f"An integer, at least {minimum}."]})
        return value

    def get_limit(self, request: Request) -> int:
        limit = self._integer(request, self.limit_query_param, 1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._integer(request, self.offset_query_param, 0) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Rows per page: {self.default_limit} by default, at most {self.max_limit} "
                    "(a larger limit gives that many)."
                )
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"]["minimum"] = 0
        return parameters
