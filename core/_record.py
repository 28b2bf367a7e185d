"""The compliance record's words: how a shopper asked, how their identity was verified, what they were answered.

They are the public names of ``shared/CONTRACT.md`` ("Compliance record"), typed by staff in commands and forms,
stored as these values, and counted by the figures a regulator asks for, so one list serves all three.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DenialReason", "Outcome", "ReceivedVia", "VerificationMethod"]


class ReceivedVia(StrEnum):
    """How the shopper made the request (``--via``): CCPA's "manner in which the request was made"."""

    EMAIL = "email"
    FORM = "form"
    PHONE = "phone"
    MAIL = "mail"
    AGENT = "agent"  # an authorized agent acting for the shopper
    OTHER = "other"


class VerificationMethod(StrEnum):
    """How staff verified that the requester is the shopper (``--verified``, ``verify``)."""

    ORDER = "order"  # the requester showed details of an order only the shopper knows
    EMAIL = "email"  # the request came from, or was confirmed at, the shopper's own address
    DOCUMENT = "document"
    AGENT = "agent"  # an authorized agent's proof of authority
    OTHER = "other"


class Outcome(StrEnum):
    """The nature of the response, recorded when a case is closed; the value is what ``outcome`` holds."""

    COMPLIED = "complied"
    COMPLIED_IN_PART = "complied in part"
    NO_DATA = "no data"  # Amazon found no shopper with that email
    DENIED = "denied"


class DenialReason(StrEnum):
    """Why a request was denied (``deny``); ``OTHER`` needs a note saying what."""

    UNVERIFIABLE = "unverifiable"
    EXEMPT = "exempt"
    WITHDRAWN = "withdrawn"
    DUPLICATE = "duplicate"
    UNFOUNDED = "unfounded"
    OTHER = "other"
