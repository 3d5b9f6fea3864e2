-- acct_...1 connected as declared (no notice); acct_...2 connected in test mode although
-- production expects live mode; acct_...3 has only a revoked token (still waiting); the
-- HubSpot portal is connected; acct_...Rogue1 is connected but declared nowhere.
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-1', 'acct_1PlanFixtureAcme1', true),
       ('acme', 'STRIPE', 'opaque-ciphertext-2', 'acct_1PlanFixtureAcme2', false),
       ('acme', 'STRIPE', 'opaque-ciphertext-4', 'acct_1PlanFixtureRogue1', true);
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode,
                          is_active, revoked_at)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-3', 'acct_1PlanFixtureAcme3', true, false, now());
INSERT INTO oauth_tokens (tenant_id, platform, access_token, hubspot_portal_id, hubspot_app_id)
VALUES ('acme', 'HUBSPOT', 'opaque-ciphertext-5', '48213907', '987654');
