"""``data-request-bot playground``: the real bot on the sandbox, used through a Slack channel in a browser.

The page (``static/``, plain HTML, CSS and JavaScript, shipped as package data) draws the
channel as the chosen person sees it; the server behind it is the loopback Slack, which
signs what the person does and sends it to the bot as Slack would.
"""

from offline.playground._run import ALLOWED, PEOPLE, run_playground

__all__ = ["ALLOWED", "PEOPLE", "run_playground"]
