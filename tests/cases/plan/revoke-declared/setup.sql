-- Tokens written by the OAuth flow: two active ones for declared accounts, and one that was
-- revoked before (nothing left to revoke for it).
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-1', 'acct_1PlanFixtureAcme1', true);
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode,
                          is_active, revoked_at, revoked_by, revoked_reason)
VALUES ('acme', 'STRIPE', 'opaque-ciphertext-0', 'acct_1PlanFixtureAcme1', true,
        false, now() - interval '30 days', 'someone', 'rotated');
INSERT INTO oauth_tokens (tenant_id, platform, access_token, hubspot_portal_id, hubspot_app_id)
VALUES ('acme', 'HUBSPOT', 'opaque-ciphertext-2', '48213907', '987654');
