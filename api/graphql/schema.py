"""The served schema: the contract's built parts, with request limits."""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
          AddValidationRules,
          MaxTokensLimiter,
          ParserCache,
          ValidationCache,
          max_aliases,
          query_depth_limiter,
)
from strawberry.tools import merge_types

from api.graphql.assignment import AssignmentMutations, AssignmentQuery
from api.graphql.conversations import ConversationQuery
from api.graphql.executor import FastExecutor
from api.graphql.mutations_admin import AdminMutations
from api.graphql.mutations_mailboxes import MailboxMutations
from api.graphql.query import Query as AdminQuery

Query = merge_types("Query", (AdminQuery, ConversationQuery, AssignmentQuery))
Mutation = merge_types("Mutation", (MailboxMutations, AdminMutations, AssignmentMutations))

# The limits' validation rules are made once, not per request (as QueryDepthLimiter and
# MaxAliasesLimiter would), so that a document validated before (same text, same rules) is not
# validated again: parsing and validating a workspace page cost about a tenth of answering it.
LIMITS = (query_depth_limiter.create_validator(max_depth=12, should_ignore=None),
          max_aliases.create_validator(max_alias_count=50))
CACHED_DOCUMENTS = 256  # distinct query texts kept parsed and validated (LRU)

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    execution_context_class=FastExecutor,  # attribute-only fields without graphql-core's full path per field
    extensions=[
        lambda: MaxTokensLimiter(max_token_count=5000),
        lambda: AddValidationRules(list(LIMITS)),
        lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
        lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
    ],
)
