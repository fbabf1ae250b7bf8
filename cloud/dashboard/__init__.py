"""The operator's dashboard: pages served by the API, live through server-sent events."""
