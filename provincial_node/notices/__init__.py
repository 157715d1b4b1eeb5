"""通知公告: notices the province publishes to the users of its node, shown on every user's home page."""
