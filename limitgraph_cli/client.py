"""The HTTP side: one httpx client per command, errors turned into exit codes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from limitgraph_cli import __version__
from limitgraph_cli.errors import CliError, ExitCode

API_KEY_PREFIX = "lg_"  # keys made by the server's api-keys endpoint; anything else is a token
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def authorization(api_key: str) -> str:
    scheme = "Api-Key" if api_key.startswith(API_KEY_PREFIX) else "Token"
    return f"{scheme} {api_key}"


def _error_of(response: httpx.Response) -> tuple[str, dict[str, Any] | None]:
    try:
        body = response.json()
        error = body["error"]
        message = error.get("message") or error.get("code") or response.reason_phrase
        fields = error.get("fields")
        if fields:
            message = f"{message} {fields}" if str(fields) not in message else message
        return message, body
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"{response.status_code} {response.reason_phrase}: {response.text[:300]}", None


def raise_for(response: httpx.Response) -> None:
    """CliError with the exit code for an error status (the API's message kept)."""
    status = response.status_code
    if status < 400:
        return
    message, body = _error_of(response)
    if status in (401, 403):
        code = ExitCode.AUTH
    elif status == 404:
        code = ExitCode.NOT_FOUND
    elif status >= 500:
        code = ExitCode.UNAVAILABLE
    else:
        code = ExitCode.REFUSED
    raise CliError(f"{status}: {message}", code, body)


class Api:
    def __init__(self, url: str, api_key: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url,
            headers={"Authorization": authorization(api_key), "User-Agent": f"limitgraph-cli/{__version__}"},
            timeout=DEFAULT_TIMEOUT,
        )

    def close(self) -> None:
        self.http.close()

    @contextlib.contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise CliError(
                f"{self.url} did not answer in time ({type(exc).__name__})", ExitCode.UNAVAILABLE
            ) from exc
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}", ExitCode.UNAVAILABLE) from exc

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one); CliError for any error."""
        params = {key: value for key, value in (params or {}).items() if value is not None}
        with self._transport_errors():
            response = self.http.request(method, path, json=json, params=params, headers=headers)
        raise_for(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(f"{path} answered something that is not JSON", ExitCode.UNAVAILABLE) from exc

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        check: bool = True,
    ) -> Iterator[httpx.Response]:
        """A streamed response; with `check`, an error status is read and raised as CliError."""
        with (
            self._transport_errors(),
            self.http.stream(
                method, path, json=json, headers=headers, timeout=timeout or DEFAULT_TIMEOUT
            ) as response,
        ):
            if check and response.status_code >= 400:
                response.read()
                raise_for(response)
            yield response
