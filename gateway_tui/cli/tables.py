"""The words for each kind of resource, and the tables `gateway get KIND` prints, one per kind.

Kept apart from the grammar (cli/parser.py) and the verbs (cli/resources.py) so that a plain read in local mode
(cli/local_read.py) reads the same words and prints the same table without loading argparse or the engine.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays unloaded: `gateway get` in local mode loads this module
if TYPE_CHECKING:
    from typing import Any, Sequence

from gateway_daemon.console import Table

KIND_WORDS = {
    "repository": "repository", "repositories": "repository", "repo": "repository", "repos": "repository",
    "decorator": "decorator", "decorators": "decorator",
    "service": "service", "services": "service", "svc": "service",
    "secret": "secret", "secrets": "secret",
    "run": "run", "runs": "run",
    "user": "user", "users": "user",
    "runner": "runner", "runners": "runner",
    "audit": "audit",
    "apikey": "apikey", "apikeys": "apikey", "api-key": "apikey", "api-keys": "apikey",
    "registry": "registry", "registries": "registry",
    "executable-object": "executable-object", "executable-objects": "executable-object",
    "secret-provider": "secret-provider", "secret-providers": "secret-provider",
}


def alias_text(secret: Any) -> str:
    """How a secret's table row says where its value is: an alias's provider, path and key; '-' when sealed here."""
    if not getattr(secret, "provider", ""):
        return "-"
    key = getattr(secret, "key", "")
    return f"alias: {secret.provider} {getattr(secret, 'path', '')}" + (f" [{key}]" if key else "")


def table(kind: str, resources: Sequence[Any]) -> Table:
    """The table `gateway get KIND` prints: what a person looks for in a list, one row a resource (a decoded
    resource, or a row of the same fields read straight from the local store)."""
    if kind == "repository":
        t = Table(["name", "url", "reference", "tags", "description"])
        for r in resources:
            t.add(r.name, r.url, r.reference or "(HEAD)", r.tags, r.description)
    elif kind == "decorator":
        t = Table(["name", "fields", "required", "description"])
        for r in resources:
            schema = r.schema
            t.add(r.name, list(schema.get("properties", {})), schema.get("required", []), r.description)
    elif kind == "service":
        t = Table(["name", "type", "repository", "decorator", "tags", "description"])
        for r in resources:
            t.add(r.name, r.type, r.repository, r.decorator, r.tags, r.description)
    elif kind == "registry":
        from gateway_daemon.core.resources.registries import effective_defaults

        t = Table(["name", "type", "url", "default", "credentials", "description"])
        chosen = effective_defaults(resources)  # as the TUI marks them: the built-in one while none is stored
        for r in resources:
            credentials = (f"{r.username}:<{r.password_name}>" if r.password_name else
                           f"token <{r.token_name}>" if r.token_name else r.username or "-")
            t.add(r.name, r.type, r.url, "yes" if r.name in chosen else "", credentials, r.description)
    elif kind == "executable-object":
        t = Table(["name", "exec command", "arg format", "description"])
        for r in resources:
            t.add(r.name, r.exec_command, r.arg_format, r.description)
    elif kind == "secret":
        t = Table(["name", "provider", "tags", "description", "updated"])
        for r in resources:
            t.add(r.name, alias_text(r), r.tags, r.description, r.updated_at)
    elif kind == "secret-provider":
        t = Table(["name", "type", "where", "auth", "description"])
        for r in resources:
            t.add(r.name, r.type, r.url or r.command, r.auth_method or ("mutual TLS" if r.type == "cyberark" else "-"),
                  r.description)
    else:
        t = Table(["name", "description", "updated"])
        for r in resources:
            t.add(r.name, r.description, r.updated_at)
    return t
