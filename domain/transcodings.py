"""Transcodings for every non-JSON type stored in events: enums and value records."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain import values
from domain.mail import AttachmentRef, InboundMail, ReceivedMail
from domain.reply import OutboundMail
from domain.routing import RuleSpec
from domain.sidebar import MatchKey, RecordData, SidebarFieldSpec, SourceKind, SourceSpec


class EnumAsValue(Transcoding):
    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = f"enum:{enum_type.__name__}"

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        member: Enum = self.type(data)
        return member


VERSION_KEY = "_v"


class RecordAsDict(Transcoding):
    """A frozen dataclass as a dict of its fields (nested values transcode themselves).

    Records are versioned as events are: a record whose stored shape changes gets a
    `class_version: ClassVar[int] = N` and static methods `upcast_vK_vK+1(data: dict) -> None`
    that turn the stored dict of version K into version K+1 in place. The version is stored
    (as "_v") only above 1, so everything written before records had versions is version 1
    and reads as it always did.
    """

    def __init__(self, record_type: type[Any]) -> None:
        self.type = record_type
        self.name = f"record:{record_type.__name__}"
        self.fields = [f.name for f in dataclasses.fields(record_type)]
        self.version: int = getattr(record_type, "class_version", 1)

    def encode(self, obj: Any) -> dict[str, Any]:
        data = {name: getattr(obj, name) for name in self.fields}
        if self.version > 1:
            data[VERSION_KEY] = self.version
        return data

    def decode(self, data: dict[str, Any]) -> Any:
        data = dict(data)
        version = int(data.pop(VERSION_KEY, 1))
        while version < self.version:
            getattr(self.type, f"upcast_v{version}_v{version + 1}")(data)
            version += 1
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
    values.ConversationStatus,  # kept in Conversation snapshots
    SourceKind,
    MatchKey,
)
# InboundMail is recorded only by MessageReceived v1 events (new ones record ReceivedMail): kept to read them.
RECORDS: tuple[type[Any], ...] = (
    values.ServerSettings, values.Condition, RuleSpec, AttachmentRef, InboundMail, ReceivedMail, OutboundMail,
    SidebarFieldSpec, SourceSpec, RecordData)


def register_all(transcoder: JSONTranscoder) -> None:
    for enum_type in ENUMS:
        transcoder.register(EnumAsValue(enum_type))
    for record_type in RECORDS:
        transcoder.register(RecordAsDict(record_type))
