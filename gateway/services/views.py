"""What the read views of stored configuration share: a frozen wrapper around a record with an id, a name and
Cognito-shaped ``settings`` (a user pool's, an identity pool's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar


class NamedRecord(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=NamedRecord)


@dataclass(frozen=True)
class RecordView(Generic[R]):
    """The record's id, name and settings; subclasses add what services read of the settings."""

    record: R

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def settings(self) -> dict[str, Any]:
        return self.record.settings
