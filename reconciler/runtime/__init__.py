"""The services' side of the reconciler, for Python services (and the tests).

The contract lives in PostgreSQL (the ``reconciler_*`` functions, row-level security and the
stored-secret formats of ``docs/stored-secrets.md``), so services in any language can use it;
this package is the Python client over it::

    from reconciler.runtime import OAuthAccount, RuntimeClient

    with RuntimeClient(url) as client, client.session("acme") as s:   # keys from environment
        (config,) = s.active_config("STRIPE", "PRODUCTION")  # one per primary integration
        # Its secrets are Sensitive: masked when printed, .reveal() only for the call.
        if s.allow_delivery(hook_id):
            ...
        s.record_delivery(hook_id, succeeded=False, error="HTTP 503")
        token_id = s.store_oauth_token(
            OAuthAccount.stripe("acct_1Nv0FGQ9RKHgCVdK", livemode=True), access_token="..."
        )
"""

from reconciler.runtime.client import (
    ActiveConfig,
    OAuthAccount,
    OAuthTokens,
    RuntimeClient,
    RuntimeSession,
)

__all__ = ["ActiveConfig", "OAuthAccount", "OAuthTokens", "RuntimeClient", "RuntimeSession"]
