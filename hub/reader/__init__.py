"""The Reader hub: live subscriptions over SignalR (the Quix Streaming Reader surface).

    hub.py            the hub methods: subscribe and unsubscribe
    subscriptions.py  subscriptions as SignalR group names (SubscriptionKind) and the interest index
    group_fanout.py   one store subscription per process, fanned out to the subscription groups
    docs.py           /reader's routes in the OpenAPI document
"""
