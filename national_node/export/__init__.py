"""The audit bundle an auditor verifies offline with ``tmis audit``."""
