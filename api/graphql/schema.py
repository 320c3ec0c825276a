"""The served schema: the contract's built parts, with request limits."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

from api.graphql.assignment import AssignmentMutations, AssignmentQuery
from api.graphql.conversations import ConversationQuery
from api.graphql.mutations_admin import AdminMutations
from api.graphql.mutations_mailboxes import MailboxMutations
from api.graphql.query import Query as AdminQuery

Query = merge_types("Query", (AdminQuery, ConversationQuery, AssignmentQuery))
Mutation = merge_types("Mutation", (MailboxMutations, AdminMutations, AssignmentMutations))

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=12),
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: MaxAliasesLimiter(max_alias_count=50),
    ],
)
