-- Tokens of accounts an earlier apply found declared (managed_since set), since removed
-- from the manifests; and one token of an account no manifest has ever declared, written
-- by the application before adoption (unmanaged: kept even with --prune).
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode,
                          managed_since)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-1', 'acct_1PlanFixtureRogue1', true, now());
INSERT INTO oauth_tokens (tenant_id, platform, access_token, quickbooks_realm_id, managed_since)
VALUES ('acme', 'QUICKBOOKS', 'opaque-ciphertext-2', '9130347596263942', now());
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-3', 'acct_1PlanFixtureLegacy1', true);
