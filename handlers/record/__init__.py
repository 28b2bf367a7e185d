"""The compliance record as staff keep it: the shopper's identity verified, and the nature of the answer.

``rules``: which words staff may type (methods, reasons, notes), which outcome a close records, where a
denial leaves a request; ``verbs``: the ``verify``, ``deny`` and ``close`` commands read into what they ask
for; ``actions``: what those commands and the thread's **Verify identity** and **Deny** buttons (with their
forms) do. Their words are in ``handlers/texts/record.py``.
"""

__all__: list[str] = []
