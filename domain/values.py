"""Value types shared by the aggregates: enums and small frozen records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ConversationStatus(Enum):
    """Where a conversation stands (DESIGN 4): waiting for a rule, for an agent, handled, done."""

    UNROUTED = "UNROUTED"
    QUEUED = "QUEUED"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class MailProtocol(Enum):
    IMAP = "IMAP"
    POP3 = "POP3"


class TransportSecurity(Enum):
    TLS = "TLS"
    STARTTLS = "STARTTLS"
    NONE = "NONE"


class AgentStatus(Enum):
    ONLINE = "ONLINE"
    AWAY = "AWAY"
    OFFLINE = "OFFLINE"


class Role(Enum):
    ADMIN = "ADMIN"
    AGENT = "AGENT"
    AUDITOR = "AUDITOR"


class AssignmentStrategy(Enum):
    LOAD_BALANCED = "LOAD_BALANCED"
    ROUND_ROBIN = "ROUND_ROBIN"
    IDLE_FIRST = "IDLE_FIRST"
    ACCOUNT_OWNER = "ACCOUNT_OWNER"
    CONTACT_OWNER = "CONTACT_OWNER"


class ConditionField(Enum):
    FROM_ADDRESS = "FROM_ADDRESS"
    FROM_DOMAIN = "FROM_DOMAIN"
    TO_ADDRESS = "TO_ADDRESS"
    CC_ADDRESS = "CC_ADDRESS"
    SUBJECT = "SUBJECT"
    BODY = "BODY"
    HEADER = "HEADER"
    HAS_ATTACHMENT = "HAS_ATTACHMENT"


class ConditionOperator(Enum):
    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT_EQUALS"
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT_CONTAINS"
    STARTS_WITH = "STARTS_WITH"
    ENDS_WITH = "ENDS_WITH"
    MATCHES_REGEX = "MATCHES_REGEX"
    IS_TRUE = "IS_TRUE"
    IS_FALSE = "IS_FALSE"


class ConditionMatch(Enum):
    ALL = "ALL"
    ANY = "ANY"


@dataclass(frozen=True)
class ServerSettings:
    """Where and how to reach a mail server. The password is never part of it."""

    host: str
    port: int
    security: TransportSecurity
    username: str


@dataclass(frozen=True)
class Condition:
    field: ConditionField
    operator: ConditionOperator
    value: str = ""
    header_name: str | None = None
