"""Which manifest fields hold secrets, declared once.

The diff compares these by fingerprint, apply encrypts them, and nothing prints them.
"""

from __future__ import annotations

from typing import Final

INTEGRATION_SECRETS: Final = ("api_key", "api_secret")
WEBHOOK_SECRETS: Final = ("signing_secret", "auth_token", "auth_password")
