"""The Reader hub: live subscriptions over SignalR (the Quix Streaming Reader surface)."""
