"""Background tasks (后台任务): long work — batch imports now, reports and registrations later — run outside
the request, with progress, cancel and a result that pages and scripts poll."""
