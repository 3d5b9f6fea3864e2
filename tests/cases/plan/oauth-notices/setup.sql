-- acct_...1 connected as declared (no notice); acct_...2 connected in test mode although
-- production expects live mode; acct_...3 has only a revoked token (still waiting); the
-- HubSpot portal is connected; all of these were marked managed by an earlier apply.
-- acct_...Rogue1 is connected but no manifest ever declared it (unmanaged: one summary
-- notice); acct_...Rogue2 was declared once and is no longer (undeclared: HIGH notice).
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode,
                          managed_since)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-1', 'acct_1PlanFixtureAcme1', true, now()),
       ('acme', 'STRIPE', 'opaque-ciphertext-2', 'acct_1PlanFixtureAcme2', false, now()),
       ('acme', 'STRIPE', 'opaque-ciphertext-6', 'acct_1PlanFixtureRogue2', true, now());
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-4', 'acct_1PlanFixtureRogue1', true);
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode,
                          is_active, revoked_at)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-3', 'acct_1PlanFixtureAcme3', true, false, now());
INSERT INTO oauth_tokens (tenant_id, platform, access_token, hubspot_portal_id, hubspot_app_id,
                          managed_since)
VALUES ('acme', 'HUBSPOT', 'opaque-ciphertext-5', '48213907', '987654', now());
