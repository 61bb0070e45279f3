"""What operators create and name: services, decorators, repositories, registries, secrets, executables.

Each kind is a dataclass (`base.Resource`) that validates itself and encodes to the store's JSON; `catalog`
reads and caches them from the store for everyone else (the engine, the life of a run, import and export).
Runner announcements (`runners`) and the `[features]` switch on service types (`features`) live here too.
"""
