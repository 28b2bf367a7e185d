"""What a kind of request provides, so that the shared steps can run it: one ``KindFlow`` value per kind.

The shared steps (``handlers/lifecycle.py``: store first, open the thread, start with the clientToken,
ask Amazon, apply; the outbox, the inbox, the reconciler, cases) never name a kind. They look the
request's kind up in ``deps.kinds`` (``KINDS`` in ``handlers/kinds/registry.py``) and follow its entry:

- ``operations``: Amazon's side (``prime.Operations``: start and query documents, event types);
- ``moves``: what each of Amazon's task statuses does to a request (from where, to where, what the
  thread is told), and ``waiting``, the statuses that change nothing;
- ``started``: where a request stands once Amazon accepted its start, and ``hold_days``, how long
  Amazon holds its task before running it (nothing polls it before then);
- ``texts``: its title, status lines, thread replies and buttons (a ``KindTexts``);
- ``actions``: its buttons' handlers, by Slack action id, registered with every other kind's, and
  ``views``: its modals' submission handlers, by callback id;
- ``verb``, ``options``, ``start_params``: how staff ask for one, and what the start call carries
  beside the shopper; ``note``: what the audit log's ``requested`` entry says of its params;
  ``duplicate_window``: how long a request for the same shopper is a duplicate.

- ``opened``: where a request goes once its thread is posted (at once to its start, or to wait for a
  person's approval: a status no step acts on waits for the kind's buttons); the outbox hands it to the
  store, which applies it in the same write as the thread's ts;
- ``defaults``: the params a command may leave out, from the settings (``KindSettings``);
  ``free_text``: the params staff type freely (they may name the shopper), erased with the email;
  ``form_fields``: its own options as fields of the new-request form (read by ``options``, like the command).

A new kind is a package beside ``retrieval`` and ``erasure`` and one entry in ``handlers/kinds/registry.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.texts.blocks import Block, Message
from prime import Operations
from store import Request, RequestStatus

if TYPE_CHECKING:  # a kind's buttons take the Desk, and the Flow names KindFlow in turn
    from handlers.desk import Desk

__all__ = [
    "Click",
    "FormField",
    "KindFlow",
    "KindSettings",
    "KindTexts",
    "Move",
    "Options",
    "ViewSubmit",
    "no_options",
]

# A kind's own words in the command, taken out before the shared parser reads the rest: (its params,
# the words left), or what is wrong with them, in words for the person who typed them.
Options = Callable[[Sequence[str]], "tuple[dict[str, str], list[str]] | str"]


class KindSettings(Protocol):
    """The settings a kind's ``defaults`` read (the bot's ``Settings`` is one)."""

    @property
    def deletion_hold_days(self) -> int: ...


def no_defaults(_settings: KindSettings) -> Mapping[str, str]:
    return {}


class Click(Protocol):
    """A button's handler, as Bolt calls it: acknowledge at once, do the work in the background."""

    def __call__(
        self, deps: Desk, *, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond
    ) -> Awaitable[None]: ...


class ViewSubmit(Protocol):
    """A modal's submission handler, as Bolt calls it: acknowledge (or answer the form's errors) at once."""

    def __call__(self, deps: Desk, *, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> Awaitable[None]: ...


def no_options(words: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """A kind with no options of its own: every word goes to the shared parser."""
    return {}, list(words)


@dataclass(frozen=True, slots=True)
class FormField:
    """One of a kind's own options as a field of the new-request form, read as the command reads ``flag value``."""

    flag: str  # the command's option (``--hold``): the field's text is read by the kind's ``options`` after it
    label: str
    hint: str = ""
    multiline: bool = False
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """What one of Amazon's task statuses does to a request: from where, to where, what the thread is told.

    The store moves a request only from ``from_``, so applying the same status twice posts once. Every
    move refreshes the thread's first message; ``reply`` (a name the kind's ``KindTexts.reply`` knows) is
    also posted in the thread, or the one ``replies_after`` gives for the status the request moved from.
    ``passed`` gives, for a status the request moves from, the audit words of the steps Amazon took that
    the bot never saw (an erasure's hold that ended), written before ``action``.
    """

    from_: frozenset[RequestStatus]
    to: RequestStatus
    action: str  # the audit log's word for it: "completed", "failed"
    reply: str | None = None
    replies_after: Mapping[RequestStatus, str] = field(default_factory=dict)
    errors: bool = False  # the move keeps Amazon's reasons (a failure); any other move clears them
    passed: Mapping[RequestStatus, tuple[str, ...]] = field(default_factory=dict)

    def reply_from(self, status: RequestStatus) -> str | None:
        """The thread reply for this move when it is made from ``status``."""
        return self.replies_after.get(status, self.reply)

    def passed_from(self, status: RequestStatus) -> tuple[str, ...]:
        """The audit words of the steps skipped when this move is made from ``status``."""
        return self.passed.get(status, ())


class KindTexts:
    """A kind's own words and buttons; the shared frame (``handlers/texts/``) puts them in every message.

    A kind subclasses it: ``title``, ``status_lines``, ``reply`` (its moves' replies), ``help`` and
    ``start_command`` are its own; the rest have the default every kind may share, and a kind overrides
    what it says differently.
    """

    title = "Shopper data request"  # the thread's first line
    form_label = "Shopper data request"  # the kind's choice in the new-request form
    status_lines: Mapping[RequestStatus, str] = MappingProxyType({})
    short_statuses: Mapping[RequestStatus, str] = MappingProxyType({})  # the notification text; absent: "starting"

    def reply(self, name: str, request: Request) -> Message | None:
        """The thread reply called ``name`` (a move's, or a shared one said this kind's way); None: not its own."""
        return None

    def help(self, command: str) -> str:
        """This kind's lines of ``help``."""
        raise NotImplementedError

    def start_command(self, subject: str) -> str:
        """The command that starts another request of this kind for ``subject`` (``<email>``)."""
        raise NotImplementedError

    def status_line(self, request: Request, *, waiting: str, closed: str) -> str:
        """The Status field: ``closed`` once the case is closed, ``waiting`` while Amazon cannot be asked."""
        if request.closed_at is not None:
            return closed
        if request.status is RequestStatus.STARTING and request.waiting_since is not None:
            return waiting
        return self.status_lines[request.status]

    def short_status(self, request: Request) -> str:
        return "closed" if request.closed_at is not None else self.short_statuses.get(request.status, "starting")

    def extra_fields(self, request: Request) -> list[tuple[str, str]]:
        """Fields of the thread's first message beside the shared ones (requester, dates, task, status)."""
        return []

    def parent_actions(self, request: Request) -> list[Block]:
        """Buttons on the thread's first message, for where the request stands now."""
        return []

    def status_offer(self, request: Request) -> list[Block]:
        """Buttons beside the answer to ``status``, so nothing depends on a thread post having arrived."""
        return []

    noun = "request"  # what a list calls one: ``retrieval``, ``erasure``
    # Where **Deny** closes a case of this kind: a denial never leaves Amazon doing what staff refused.
    deniable: frozenset[RequestStatus] = frozenset()

    def duplicate(self, existing: Request, *, permalink: str | None) -> Message | None:
        """This kind's own answer to a duplicate request; None: the shared one (``texts.duplicate_request``)."""
        return None


@dataclass(frozen=True, slots=True)
class KindFlow:
    """Everything the shared steps need to know about one kind of request (see the module docstring)."""

    operations: Operations
    texts: KindTexts
    moves: Mapping[str, Move]
    waiting: frozenset[str]  # Amazon's statuses that change nothing: the task is still running
    started: Callable[[Request], RequestStatus] = lambda _request: RequestStatus.IN_PROGRESS
    hold_days: Callable[[Request], int] = lambda _request: 0  # Amazon holds the started task this many days
    duplicate_window: float = 0.0  # a request for the same shopper unfinished, or made this many seconds ago
    actions: Mapping[str, Click] = field(default_factory=dict)
    views: Mapping[str, ViewSubmit] = field(default_factory=dict)
    verb: str | None = None  # the command's first word for this kind; None: a bare email
    options: Options = no_options
    start_params: Callable[[Request], Mapping[str, Any]] = lambda _request: {}  # the start input beside the shopper
    note: Callable[[Mapping[str, str]], str] = lambda _params: ""  # the ``requested`` audit entry's detail
    opened: RequestStatus = RequestStatus.STARTING  # where a request goes once its thread is posted
    defaults: Callable[[KindSettings], Mapping[str, str]] = no_defaults  # params a command may leave out
    free_text: frozenset[str] = frozenset()  # params staff type freely: erased with the email at retention
    form_fields: tuple[FormField, ...] = ()  # its own options as fields of the new-request form

    @property
    def kind(self) -> str:
        return self.operations.kind

    @property
    def ask_amazon(self) -> frozenset[RequestStatus]:
        """Where Amazon's answer may still move a request of this kind: every status a move starts from."""
        return frozenset().union(*(move.from_ for move in self.moves.values()))
