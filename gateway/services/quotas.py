"""Cognito's resource quotas that more than one service enforces ("Quotas in Amazon Cognito", the non-adjustable
user pool resource quotas)."""

from __future__ import annotations

from typing import Final

# "Maximum number of groups that each user can belong to: 100". It also bounds what every token of the user carries
# in cognito:groups, and what the front door passes upstream in a header.
MAX_GROUPS_PER_USER: Final = 100
# "Maximum number of groups per user pool: 10,000".
MAX_GROUPS_PER_POOL: Final = 10_000
