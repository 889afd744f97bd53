"""Identity: the embedded OAuth 2.0 authorization server, access tokens, clients, rate limits."""

from hub.auth.identity import Identity
from hub.auth.tokens import InvalidToken, TokenClaims

__all__ = ["Identity", "InvalidToken", "TokenClaims"]
