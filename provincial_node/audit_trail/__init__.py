"""操作日志: who did what, when, to what and why — account changes, review decisions, change requests,
transfers, imports and exports (数据导出有据可查)."""
