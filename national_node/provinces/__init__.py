"""The federation's members (省份): chain state, keys, enrolment tokens, request nonces. The lowest area of
the national node; the registry area runs the workflows over it (enrolment, key rotation)."""
