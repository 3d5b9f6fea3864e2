-- Tokens of accounts no manifest declares (connected by hand in each platform's UI).
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-1', 'acct_1PlanFixtureRogue1', true);
INSERT INTO oauth_tokens (tenant_id, platform, access_token, quickbooks_realm_id)
VALUES ('acme', 'QUICKBOOKS', 'opaque-ciphertext-2', '9130347596263942');
