"""Test helper: ``rotate-key`` that stops at a chosen moment, so a test can kill -9 it there.

``rotate_paused.py midway N``: after N emails have been re-sealed it prints ``midway`` and waits; the
rotation's transaction is open, half its rows rewritten, when the test kills the process.
``rotate_paused.py committed``: once the rotation is committed and the database closed it prints
``committed`` and waits; the data is under the new key, and whatever comes after has not happened.
"""

from __future__ import annotations

import sys
from unittest import mock

from bot.cli import main
from store import EmailCipher, Store


def pause(word: str) -> None:
    print(word, flush=True)
    sys.stdin.read()  # blocks until the test kills this process


if __name__ == "__main__":
    where = sys.argv[1]
    if where == "midway":
        after = int(sys.argv[2])
        original = EmailCipher.encrypt
        calls = 0

        def encrypt(self: EmailCipher, email: str) -> bytes:
            global calls
            calls += 1
            if calls == after:
                pause("midway")
            return original(self, email)

        patch = mock.patch.object(EmailCipher, "encrypt", encrypt)
    else:
        original_close = Store.close

        async def close(self: Store) -> None:
            await original_close(self)
            pause("committed")

        patch = mock.patch.object(Store, "close", close)
    with patch:
        sys.exit(main(["rotate-key"]))
