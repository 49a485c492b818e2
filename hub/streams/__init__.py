"""The stream domain: topics hold streams, streams hold events and parameter data.

    models.py          the values (Event, ParameterData, StreamInfo, ReadWindow, Page, ...)
    errors.py          ValidationError, the one error for bad client input
    validation.py      raw decoded JSON/MessagePack values -> models, or a ValidationError
    lenient.py         a batch whose bad rows are quarantined instead of failing it
    schema.py          JSON Schemas of what validation accepts and the models serialize to
    service.py         StreamService: what every entry point calls to write, read and follow
    event_follower.py  one stream's live events for a reader that follows it (EventFollower)
    store/             the StreamStore interface, its backends, and its live change broadcast

Knows nothing of SignalR or HTTP: it imports no other hub package, nor starlette or uvicorn.
"""
