-- What the runtime writes (sync scheduler, health checker, webhook dispatcher).
UPDATE integration_configs
   SET health_status = 'UNHEALTHY',
       health_message = 'HTTP 401 from upstream',
       last_health_check_at = now(),
       next_sync_at = now() + interval '15 minutes',
       last_sync_at = now() - interval '1 minute',
       row_version = row_version + 1;
UPDATE webhook_configurations
   SET circuit_breaker_status = 'OPEN',
       consecutive_failures = 7,
       circuit_opened_at = now(),
       total_trigger_count = 1200,
       total_failure_count = 37,
       last_trigger_at = now(),
       last_success_at = now() - interval '1 hour',
       last_failure_at = now(),
       row_version = row_version + 1;
