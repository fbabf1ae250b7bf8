"""Who may do what: users with roles, hashed passwords, hashed API tokens, login limits."""
