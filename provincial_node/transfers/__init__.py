"""调动 and 交流轮岗: the shared steps vocabulary (:mod:`.steps`), inside the province (:mod:`.local`) and
across provinces through the national node (:mod:`.cross_province`)."""
