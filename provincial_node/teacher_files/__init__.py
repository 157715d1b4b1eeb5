"""教师电子档案: teacher files, the review chain, the one effective-write path, change requests, custom
indicators (地方拓展指标), import/export, work history; 新教师入职 (registration)."""
