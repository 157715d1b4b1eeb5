"""The ministry's province registry (省份注册): enrolment, key rotation and revocation, trust renewal — each
published as a new trust version and announced to every province — and the per-province report."""
