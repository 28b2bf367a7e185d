"""Running the bot without Slack or Amazon: the Buy with Prime sandbox, the loopback Slack, and the demo.

User features, not wiring: ``serve --sandbox`` mounts the sandbox (``offline.amazon``) on the bot's own
server, ``demo`` plays a scene against the loopback Slack (``offline.slack``), and the tests' fakes
subclass both. Nothing in handlers, store or prime knows this package exists.
"""

__all__: list[str] = []
