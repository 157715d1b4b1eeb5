"""What the national node routes down to each province: signed messages, gapless per province, pulled with a
cursor and acknowledged (transfer requests and answers, duplicate-identity notices, trust updates)."""
