"""A SignalR-compatible real-time writer hub (the Quix Streaming Writer API), self-hostable."""

__version__ = "0.1.0"
