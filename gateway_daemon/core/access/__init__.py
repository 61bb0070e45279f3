"""Who may do what: users, passwords and API keys (`auth`), roles and tag scopes (`roles`), the login
throttle (`throttle`), signed records (`integrity`) and the audit trail (`audit`)."""
