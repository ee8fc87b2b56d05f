"""One table of API operations drives both the routes and the OpenAPI document.

Each operation's wrapper does, in order: API key, rate limit, body parsing and validation
with the operation's model, the handler (domain calls in a thread), and the answer; every
refusal is a problem document. Handlers see only typed, validated values.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pwa_server.errors import ShomeiError
from pwa_server.runtime import Services
from pwa_server.sites.errors import ApiKeyRefusedError
from pwa_server.sites.rate_limit import Allowance, RateLimiter
from pwa_server.store.sites import SiteRow
from pwa_server.web.api import problems

_Model = TypeVar("_Model", bound=BaseModel)

PREFIX = "/api/v1"
# Bodies are a few hundred bytes; anything much larger is refused before it is parsed.


@dataclass(frozen=True)
class ApiCall:
    """A validated request, as a handler sees it."""

    services: Services
    site: SiteRow | None
    body: BaseModel | None
    path: dict[str, str]
    headers: dict[str, str]
    now: dt.datetime

    def body_as(self, model: type[_Model]) -> _Model:
        """The validated body, as the operation's model."""
        if not isinstance(self.body, model):
            raise TypeError(f"the operation's body is not a {model.__name__}")
        return self.body

    @property
    def caller(self) -> SiteRow:
        """The calling site (operations that are not public have one)."""
        if self.site is None:
            raise ApiKeyRefusedError()
        return self.site


@dataclass(frozen=True)
class Answer:
    """A handler's successful answer."""

    status: int
    body: BaseModel | dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiCall], Awaitable[Answer]]


@dataclass(frozen=True)
class Parameter:
    """A path or header parameter, for the OpenAPI document."""

    name: str
    location: str  # path | header
    schema: dict[str, Any]
    description: str
    required: bool = True


@dataclass(frozen=True)
class Operation:
    """One API operation: its route, its schemas and its handler."""

    method: str
    path: str  # OpenAPI form, e.g. /enrollments/{enrollment_id}
    operation_id: str
    summary: str
    handler: Handler
    responses: dict[int, tuple[str, type[BaseModel] | None]]
    body: type[BaseModel] | None = None
    parameters: tuple[Parameter, ...] = ()
    public: bool = False
    route_path: str | None = None  # Starlette form when it differs (a :path converter)
    tags: tuple[str, ...] = ()
    media_type: str = "application/json"
    cache_control: str = "no-store"


class _RefusedError(Exception):
    """The request was refused before the handler ran; `response` says why."""

    def __init__(self, response: Response) -> None:
        self.response = response


def routes(operations: list[Operation], services: Services) -> list[Route]:
    """Starlette routes for the operations, over one process's services."""
    limiter = RateLimiter(services.engine, services.settings.api_rate_limit_per_minute)
    refusals = RefusalThrottle()
    return [
        Route(
            PREFIX + (operation.route_path or operation.path),
            _endpoint(operation, services, limiter, refusals),
            methods=[operation.method],
            name=operation.operation_id,
        )
        for operation in operations
    ]


class RefusalThrottle:
    """At most one audited key refusal per client address per minute and worker process:
    anyone can send refused keys, and each event stays in the log for good, so unthrottled
    recording would let a stranger fill the audit log. Repeats within the minute are what
    the first event already says."""

    WINDOW = dt.timedelta(minutes=1)
    _MAX_CLIENTS = 10_000

    def __init__(self) -> None:
        self._last: dict[str, dt.datetime] = {}

    def first_in_window(self, client: str, *, now: dt.datetime) -> bool:
        """True when `client`'s refusal should be recorded now."""
        last = self._last.get(client)
        if last is not None and now - last < self.WINDOW:
            return False
        if len(self._last) >= self._MAX_CLIENTS:
            self._last = {k: v for k, v in self._last.items() if now - v < self.WINDOW}
        self._last[client] = now
        return True


def _endpoint(
    operation: Operation, services: Services, limiter: RateLimiter, refusals: RefusalThrottle
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        instance = request.url.path
        now = services.now()
        allowance: Allowance | None = None
        try:
            site = None
            if not operation.public:
                key_text = _bearer(request)
                try:
                    caller = await run_in_threadpool(services.sites.authenticate, key_text, now=now)
                except ApiKeyRefusedError:
                    # Audited in a transaction of its own: the refusal stands either way.
                    client = request.client.host if request.client is not None else None
                    if refusals.first_in_window(client or "unknown", now=now):
                        await run_in_threadpool(
                            services.sites.record_refusal, key_text, client=client, now=now
                        )
                    raise
                allowance = await run_in_threadpool(limiter.count, caller.key_id, now=now)
                site = caller.site
            body = await _parsed_body(operation, request, instance)
            answer = await operation.handler(
                ApiCall(
                    services=services,
                    site=site,
                    body=body,
                    path=dict(request.path_params),
                    headers={key.lower(): value for key, value in request.headers.items()},
                    now=now,
                )
            )
        except _RefusedError as refusal:
            return _with_allowance(refusal.response, allowance)
        except ShomeiError as error:
            return _with_allowance(problems.for_error(error, instance=instance), allowance)
        payload = (
            answer.body.model_dump(mode="json")
            if isinstance(answer.body, BaseModel)
            else answer.body
        )
        response = JSONResponse(
            payload,
            status_code=answer.status,
            media_type=operation.media_type,
            headers={"cache-control": operation.cache_control, **answer.headers},
        )
        return _with_allowance(response, allowance)

    return endpoint


def _bearer(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise ApiKeyRefusedError()
    return credentials


async def _parsed_body(operation: Operation, request: Request, instance: str) -> BaseModel | None:
    """The body validated by the operation's model (None when it takes none)."""
    if operation.body is None:
        return None
    try:
        # BodyLimitMiddleware has bounded the body (DEFAULT_LIMIT) before the call got here.
        data = json.loads(await request.body())
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _RefusedError(
            problems.problem(400, "malformed-json", "The body is not JSON", instance=instance)
        ) from None
    try:
        return operation.body.model_validate(data)
    except ValidationError as error:
        raise _RefusedError(problems.for_validation(error, instance=instance)) from None


def _with_allowance(response: Response, allowance: Allowance | None) -> Response:
    """The RateLimit headers (IETF httpapi draft) on every answer to a counted request."""
    if allowance is not None:
        response.headers["ratelimit-limit"] = str(allowance.limit)
        response.headers["ratelimit-remaining"] = str(allowance.remaining)
        response.headers["ratelimit-reset"] = str(allowance.reset_seconds)
    return response
