"""Transcodings for every non-JSON type stored in events: enums and value records."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain import values
from domain.mail import AttachmentRef, InboundMail
from domain.routing import RuleSpec


class EnumAsValue(Transcoding):
    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = f"enum:{enum_type.__name__}"

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        member: Enum = self.type(data)
        return member


class RecordAsDict(Transcoding):
    """A frozen dataclass as a dict of its fields (nested values transcode themselves)."""

    def __init__(self, record_type: type[Any]) -> None:
        self.type = record_type
        self.name = f"record:{record_type.__name__}"
        self.fields = [f.name for f in dataclasses.fields(record_type)]

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self.fields}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


ENUMS: tuple[type[Enum], ...] = (
    values.MailProtocol,
    values.TransportSecurity,
    values.AgentStatus,
    values.Role,
    values.AssignmentStrategy,
    values.ConditionField,
    values.ConditionOperator,
    values.ConditionMatch,
)
RECORDS: tuple[type[Any], ...] = (values.ServerSettings, values.Condition, RuleSpec, AttachmentRef, InboundMail)


def register_all(transcoder: JSONTranscoder) -> None:
    for enum_type in ENUMS:
        transcoder.register(EnumAsValue(enum_type))
    for record_type in RECORDS:
        transcoder.register(RecordAsDict(record_type))
