"""Domain errors. They carry no HTTP: ``flagsvc.web.errors`` maps them to status codes.

::

    DomainError
    ├── AuthenticationError        no or unknown credentials
    ├── PermissionDeniedError      the role may not do this
    ├── NotFoundError              the named entity does not exist
    ├── ConflictError              the request clashes with current state
    │   ├── DuplicateKeyError      a unique key is taken
    │   ├── InvalidTransitionError the stage machine forbids this move
    │   ├── ReadinessRequiredError general rollout held until readiness is complete
    │   │   └── OffVariationHeldError  so is a new off value (everyone else gets it)
    │   └── GateError              another path around the readiness gate (catch-all
    │                              cohorts, readiness lost after general rollout)
    ├── StaleVersionError          If-Match names an older version
    ├── InvalidFieldError          a field's value breaks a rule the schema cannot see
    ├── TooLargeError              a list in the request exceeds its size limit
    ├── TooManyRequestsError       a per-credential rate limit is reached
    └── PromisedDateError          a due or target date was sent
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every error the release rules raise."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(DomainError):
    """No credentials, or credentials that match no live token."""


class PermissionDeniedError(DomainError):
    """The caller's role does not allow this action."""


class NotFoundError(DomainError):
    """The named entity does not exist."""

    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} {key!r} does not exist")
        self.entity = entity
        self.key = key


class ConflictError(DomainError):
    """The request is well formed but clashes with the current state."""


class DuplicateKeyError(ConflictError):
    """A unique key is already taken."""

    def __init__(self, entity: str, key: str, field: str = "key") -> None:
        super().__init__(f"{entity} {key!r} already exists")
        self.field = field


class InvalidTransitionError(ConflictError):
    """The stage machine does not allow the requested move."""


class ReadinessRequiredError(ConflictError):
    """Entering or widening general rollout in a gated environment needs readiness."""

    def __init__(self, flag_key: str, environment: str, missing: Sequence[str]) -> None:
        super().__init__(
            f"flag {flag_key!r} is not ready for general rollout in gated environment "
            f"{environment!r}; readiness items not done: {', '.join(missing)}"
        )
        self.missing = list(missing)


class OffVariationHeldError(ReadinessRequiredError):
    """A new off variation reaches everyone outside early access: a general rollout."""

    def __init__(self, flag_key: str, environment: str, missing: Sequence[str]) -> None:
        ConflictError.__init__(
            self,
            f"flag {flag_key!r}: the off variation is what everyone outside early access "
            f"gets in gated environment {environment!r}; changing it waits for readiness "
            f"like general rollout does (not done: {', '.join(missing)})",
        )
        self.missing = list(missing)


class GateError(ConflictError):
    """The change would let users outside early access in, in a gated environment whose
    readiness is (or would become) incomplete. ``missing``: readiness items not done."""

    def __init__(self, message: str, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)


class StaleVersionError(DomainError):
    """The caller edited an older version than the one stored (a lost update averted)."""

    def __init__(self, entity: str) -> None:
        super().__init__(f"{entity} was changed by someone else; fetch it again and retry")


class InvalidFieldError(DomainError):
    """A field's value breaks a rule that needs the database to check."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TooLargeError(DomainError):
    """A list in the request holds more items than one request may carry.

    Not an invalid value (422): the same items, split over several requests, are fine.
    """

    def __init__(self, field: str, limit: int, got: int, items: str = "items") -> None:
        reason = f"at most {limit} {items} per request (got {got}); split it into smaller requests"
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.limit = limit


class TooManyRequestsError(DomainError):
    """The caller used up its allowance for now; it may go on after ``retry_after`` seconds."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many {what}; retry in {retry_after} s")
        self.retry_after = retry_after


class PromisedDateError(DomainError):
    """flagsvc records release timing; it never stores a promised delivery date."""

    def __init__(self, field: str) -> None:
        super().__init__(
            f"{field}: flagsvc does not store due or target dates. A flag names the key "
            "result it serves; release timing is recorded in the audit as it happens "
            "(see the flag's timeline and the flow metrics)."
        )
        self.field = field
