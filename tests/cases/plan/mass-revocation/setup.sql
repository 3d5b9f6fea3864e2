-- The four declared accounts, connected and marked managed by an earlier apply.
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode,
                          managed_since)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-1', 'acct_1PlanFixtureAcme1', true, now()),
       ('acme', 'STRIPE', 'opaque-ciphertext-2', 'acct_1PlanFixtureAcme2', true, now()),
       ('acme', 'STRIPE', 'opaque-ciphertext-3', 'acct_1PlanFixtureAcme3', true, now()),
       ('acme', 'STRIPE', 'opaque-ciphertext-4', 'acct_1PlanFixtureAcme4', true, now());
