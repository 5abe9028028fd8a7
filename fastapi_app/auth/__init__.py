"""Who may do what: JWTs and where tokens come from, the login and its session cookie,
password hashes, and rate limits (per process, or fleet-wide on Redis)."""
