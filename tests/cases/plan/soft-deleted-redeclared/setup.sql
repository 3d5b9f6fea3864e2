-- An earlier apply with --prune soft-deleted these rows.
UPDATE webhook_configurations
   SET deleted_at = now() - interval '2 days', is_active = false, row_version = row_version + 1
 WHERE tenant_id = 'acme' AND name = 'erp-notify';
UPDATE integration_configs
   SET deleted_at = now() - interval '2 days', row_version = row_version + 1
 WHERE tenant_id = 'acme';
