"""The mailroom application: every command, over one event log."""

from __future__ import annotations

from domain.commands.agents import AgentCommands
from domain.commands.conversations import ConversationCommands
from domain.commands.customers import CustomerCommands
from domain.commands.intake import IntakeCommands
from domain.commands.mailboxes import MailboxCommands
from domain.commands.replies import ReplyCommands
from domain.commands.routing import RoutingCommands
from domain.commands.sidebar import SidebarCommands
from domain.commands.tokens import TokenCommands


class Mailroom(
    MailboxCommands, AgentCommands, CustomerCommands, RoutingCommands, TokenCommands, IntakeCommands,
    ConversationCommands, ReplyCommands, SidebarCommands,
):
    """Commands return ids and log positions; queries go to the projections."""
