"""Running the bot without Slack or Amazon: the Buy with Prime sandbox, the loopback Slack, the demo, the playground.

User features, not wiring: ``serve --sandbox`` mounts the sandbox (``offline.amazon``) on the bot's own
server, ``demo`` plays a scene against the loopback Slack (``offline.slack``), ``playground`` lets a
person play it in a browser (``offline.playground``), and the tests' fakes subclass the first two.
Nothing in handlers, store or prime knows this package exists.
"""

__all__: list[str] = []
