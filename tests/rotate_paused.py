"""Test helper: ``rotate-key`` that stops inside its transaction, so a test can kill -9 it there.

After ``sys.argv[1]`` emails have been re-sealed it prints ``midway`` and waits on stdin forever;
the rotation's transaction is open, half its rows rewritten, when the test kills the process.
"""

from __future__ import annotations

import sys
from unittest import mock

from bot.cli import main
from store import EmailCipher

if __name__ == "__main__":
    after = int(sys.argv[1])
    original = EmailCipher.encrypt
    calls = 0

    def encrypt(self: EmailCipher, email: str) -> bytes:
        global calls
        calls += 1
        if calls == after:
            print("midway", flush=True)
            sys.stdin.read()  # blocks until the test kills this process
        return original(self, email)

    with mock.patch.object(EmailCipher, "encrypt", encrypt):
        sys.exit(main(["rotate-key"]))
