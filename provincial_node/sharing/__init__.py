"""信息共享 (暂行办法 art. 31): data-sharing applications, their review by the level that owns the data, and the
exports they grant."""
