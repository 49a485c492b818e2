"""The Writer hub: the Quix Writer surface over SignalR, a thin adapter over the stream service.

    hub.py      the hub methods (one line of policy and one service call each)
    binding.py  SendEventData's MessagePack arguments decoded straight into validated events
"""
