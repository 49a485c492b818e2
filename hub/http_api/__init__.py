"""The HTTP API: the Quix Writer and read routes and the drop-in senders, over the stream service.

    operations.py   each HTTP operation declared once: the router, the guard, idempotency, OpenAPI
    routes.py       the Quix Writer and read API (/topics/...)
    tinybird.py     drop-in: Tinybird's Events API (/v0/events)
    eventhubs.py    drop-in: Event Hubs' REST send (/{hub}/messages), with sas.py
    codec.py        request bodies in (size limits, gzip, JSON, NDJSON), JSON out
    guard.py        who is calling, whether they may, and their rate-limit budget, around every operation
    access.py       what each operation needs of the token (read, write, admin, listing, ...)
    idempotency.py  X-Idempotency-Key: a retried write gets the first reply
    acks.py         200 once stored, or 202 once accepted in order
    errors.py       ApiError and its one mapping to the wire
    openapi.py      the OpenAPI document and /docs; ready.py: GET /ready; whoami.py: GET /whoami
"""
