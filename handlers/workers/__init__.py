"""The handlers' long-running workers: each runs as one supervised loop beside the listeners.

``outbox`` sends Slack posts exactly once (``posted`` finds a post whose answer never came), ``inbox``
applies relayed events, ``reconcile`` asks Amazon about unfinished requests, ``access`` keeps the allowed
group's members, ``reminders`` and ``retention`` keep cases, and ``home`` refreshes the App Home. The
wiring (``bot/workers.py``) builds and starts them.
"""

__all__: list[str] = []
