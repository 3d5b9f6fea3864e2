-- Written by the application before adoption: one Stripe account never declared, and a
-- HubSpot token with no portal id at all.
INSERT INTO oauth_tokens (tenant_id, platform, access_token, stripe_account_id, stripe_livemode)
VALUES ('acme', 'STRIPE', 'app-plaintext-token-1', 'acct_1PlanFixtureLegacy1', true);
INSERT INTO oauth_tokens (tenant_id, platform, access_token)
VALUES ('acme', 'HUBSPOT', 'app-plaintext-token-2');
