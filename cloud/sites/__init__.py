"""Sites: where devices stand (a shop, a branch, a building)."""
