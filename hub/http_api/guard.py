"""What runs around every HTTP operation: who is calling, their rate-limit budget on the topic, and
the one place domain errors become HTTP statuses.

Order: authenticate (401/403 before anything else), spend one request of (user, topic)'s budget
(429 before the body is read), run the handler, map ValidationError -> 400 and StoreUnavailable ->
503. When rate limiting is on, every response of a rate-limited operation, errors included, carries
X-RateLimit-Limit/-Remaining/-Reset.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..auth import TokenAuth, request_token
from ..ratelimit import Decision, RateLimiter
from ..streams.store.base import StoreUnavailable
from ..streams.errors import ValidationError
from . import sas
from .errors import ApiError
from .operations import Handler, Operation


class Guard:
    def __init__(self, auth: TokenAuth, limiter: RateLimiter | None = None):
        self.auth = auth
        self.limiter = limiter

    def wrap(self, op: Operation) -> Handler:
        assert op.endpoint is not None
        endpoint = op.endpoint
        if op.auth == "none":
            return endpoint

        async def guarded(request: Request) -> Response:
            user = self.authenticate(op, request)
            request.state.user = user  # for the layers inside (idempotency scopes records by it)
            decision = self._spend(op, request, user)
            try:
                response = await endpoint(request)
            except ApiError as exc:
                if decision is not None:
                    exc.headers = {**decision.headers(), **exc.headers}
                raise
            except ValidationError as exc:
                raise ApiError(400, str(exc), decision.headers() if decision else None) from None
            except StoreUnavailable as exc:
                headers = {**(decision.headers() if decision else {}), "Retry-After": "1"}
                raise ApiError(503, f"The store is unavailable, retry later: {exc}", headers) from None
            if decision is not None:
                response.headers.update(decision.headers())
            return response

        guarded.__name__ = getattr(endpoint, "__name__", "guarded")
        return guarded

    # --- who ---------------------------------------------------------------------------------------

    def authenticate(self, op: Operation, request: Request) -> str:
        if op.auth == "tinybird":
            # Tinybird senders put the token in the header or in ?token=.
            token = request_token(request) or request.query_params.get("token")
            user = self.auth.user_for(token or "")
            if user is None:
                raise ApiError(403, "Forbidden: a valid token is required (Authorization: Bearer <token> or ?token=<token>).")
            return user
        if op.auth == "eventhubs":
            header = request.headers.get("authorization", "")
            if header[: len(sas.SCHEME)].lower() == sas.SCHEME.lower():
                return self._shared_access_signature(header, request)
        user = self.auth(request)
        if user is None:
            raise ApiError(401, headers={"WWW-Authenticate": "Bearer"})
        return user

    def _shared_access_signature(self, header: str, request: Request) -> str:
        try:
            signature = sas.parse(header)
        except sas.SasError as exc:
            raise ApiError(401, f"Unauthorized: {exc}.", {"WWW-Authenticate": sas.SCHEME}) from None
        if not signature.covers(request.url.path):
            raise ApiError(
                401,
                f"Unauthorized: the {sas.SCHEME} was made for {signature.resource_path() or '/'}, not {request.url.path}.",
                {"WWW-Authenticate": sas.SCHEME},
            )
        for message in signature.signed_messages():
            user = self.auth.user_for_signature(message, signature.signature)
            if user is not None:
                return user
        raise ApiError(
            401, f"Unauthorized: the {sas.SCHEME} is not signed with a token of this hub.", {"WWW-Authenticate": sas.SCHEME}
        )

    # --- how often ------------------------------------------------------------------------------------

    def _spend(self, op: Operation, request: Request, user: str) -> Decision | None:
        if self.limiter is None or op.topic is None:
            return None
        topic = op.topic(request)
        if topic is None:
            return None
        decision = self.limiter.take(user, topic, op.auth if op.auth in ("tinybird", "eventhubs") else "http")
        if not decision.allowed:
            raise ApiError(
                429,
                f"Rate limit of {self.limiter.rate:g} requests/s for this token on topic {topic!r} exceeded; "
                f"retry in {decision.retry_after:.2f} s.",
                decision.headers(),
            )
        return decision
