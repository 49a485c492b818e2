"""What runs around every HTTP operation: who is calling, whether their token may do it, their
rate-limit budget on the topic, and the one place domain errors become HTTP statuses.

Order: authenticate (401, or 403 on Tinybird's route), check the operation's access (403 naming the
missing scope, access.py), spend one request of (user, topic)'s budget (429 before the body is
read), run the handler, map ValidationError -> 400 and StoreUnavailable -> 503. A refused request
spends no budget and never reaches the idempotency layer (it wraps the handler). When rate limiting is on, every response of a rate-limited operation, errors included, carries
X-RateLimit-Limit/-Remaining/-Reset.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..auth.authenticator import Authenticator, request_token
from ..auth.principal import Principal
from ..ratelimit import Decision, RateLimiter
from ..streams.store.base import StoreUnavailable
from ..streams.errors import ValidationError
from . import access, sas
from .errors import ApiError
from .operations import Handler, Operation


class Guard:
    def __init__(self, auth: Authenticator, limiter: RateLimiter | None = None):
        self.auth = auth
        self.limiter = limiter

    def wrap(self, op: Operation) -> Handler:
        assert op.endpoint is not None
        endpoint = op.endpoint
        if op.auth == "none":
            return endpoint

        async def guarded(request: Request) -> Response:
            principal = self.authenticate(op, request)
            topic = op.topic(request) if op.topic is not None else None
            missing = access.missing_scope(op.access, topic, principal)
            if missing is not None:
                raise ApiError(403, access.refusal(missing))
            request.state.principal = principal  # for the layers inside (listings are filtered by it)
            request.state.user = principal.name  # idempotency scopes records by it
            decision = self._spend(op, principal.name, topic)
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

    def authenticate(self, op: Operation, request: Request) -> Principal:
        if op.auth == "tinybird":
            # Tinybird senders put the token in the header or in ?token=.
            token = request_token(request) or request.query_params.get("token")
            user = self.auth.principal_for(token or "")
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

    def _shared_access_signature(self, header: str, request: Request) -> Principal:
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
            user = self.auth.principal_for_signature(message, signature.signature)
            if user is not None:
                return user
        raise ApiError(
            401, f"Unauthorized: the {sas.SCHEME} is not signed with a token of this hub.", {"WWW-Authenticate": sas.SCHEME}
        )

    # --- how often ------------------------------------------------------------------------------------

    def _spend(self, op: Operation, user: str, topic: str | None) -> Decision | None:
        if self.limiter is None or topic is None:
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
