-- Two tokens of acct_...1 (one refreshed connection, one older) and one of acct_...2 that an
-- earlier apply already marked.
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-1', 'acct_1PlanFixtureAcme1', true),
       ('acme', 'STRIPE', 'opaque-ciphertext-2', 'acct_1PlanFixtureAcme1', true);
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode,
                          managed_since)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-3', 'acct_1PlanFixtureAcme2', true, now());
