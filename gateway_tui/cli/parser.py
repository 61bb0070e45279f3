"""The argument grammar of `gateway`: the same words as the gateway it re-imagines.

A script written for IAG 5's `iagctl` runs with `gateway` in its place: every
iagctl form is accepted beside our own, and each verb's --help names its
iagctl spelling (the epilog).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from gateway_daemon.console import FORMATS

from .tables import KIND_WORDS  # noqa: F401 (the words of each kind, read by the grammar and kind_word)

CERT_TYPES = ("ca", "server", "client", "runner")
COMPLETION_SHELLS = ("bash", "zsh", "fish")

ROLE_CHOICES = ("admin", "editor", "operator", "viewer")  # core.policy.ROLES
REGISTRY_TYPES = ("pypi", "ansible-galaxy")
EXPORT_FORMATS = ("yaml", "json", "iag5")  # db export -f: the encoding, and iag5 for IAG 5's layout
REPOSITORY_FILES = ("import.yml", "import.yaml")  # db import --repository URL without FILE: as IAG 5's examples


class UsageError(Exception):
    """Bad usage: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def common(parser: argparse.ArgumentParser, output: bool = False) -> None:
    """Options every command accepts. SUPPRESS keeps a subcommand from resetting a global value."""
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="gateway.conf to use (else $GATEWAY_CONFIG, ./gateway.conf, ~/.gateway/, /etc/gateway/)")
    parser.add_argument("--profile", metavar="NAME", default=argparse.SUPPRESS,
                        help="a [client:NAME] section of the config to connect with")
    # iagctl's global flags: every command takes them (read with getattr(args, "raw", False)).
    parser.add_argument("--raw", action="store_true", default=argparse.SUPPRESS,
                        help="run service: only the script's output; get and describe: JSON")
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="run service: the run id, timings and the commit too")
    if output:
        parser.add_argument("-o", "--output", choices=FORMATS, default="table", help="output format")


# Shell completion (gateway completion; shtab reads `.complete` of an argument): the kinds, and the names of the
# kind typed just before (the bash functions are in completion.py).
KINDS_TO_COMPLETE = ("services", "repositories", "decorators", "secrets", "registries", "executable-objects", "runs",
                     "users", "runners", "audit", "apikeys")
COMPLETE_KIND = {"bash": "_gateway_kinds", "zsh": f"({' '.join(KINDS_TO_COMPLETE)})"}
COMPLETE_NAME = {"bash": "_gateway_names"}


def _sub(subparsers, name: str, help_text: str, output: bool = False, iagctl: str = "",
         **kwargs) -> argparse.ArgumentParser:
    """A verb; `iagctl` is its spelling in IAG 5, shown at the end of its --help."""
    epilog = f"iagctl: {iagctl}" if iagctl else None
    parser = subparsers.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
    common(parser, output)
    return parser


def _repository_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--url", required=create, help="https://..., ssh://... or user@host:path, or a local path")
    parser.add_argument("--reference", help="branch, tag or commit (default: the remote's HEAD)")
    parser.add_argument("--private-key-name", metavar="SECRET", help="secret holding the ssh private key")
    parser.add_argument("--username", metavar="USER", help="https: the user git logs in as")
    parser.add_argument("--password-name", metavar="SECRET", help="https: the secret holding the user's password")
    parser.add_argument("--token-name", metavar="SECRET",
                        help="https: the secret holding an access token (the user defaults to x-access-token)")
    parser.add_argument("--description")
    parser.add_argument("--tag", action="append", metavar="TAG", help="repeatable")


def _service_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    from gateway_daemon.core.resources.services import TOFU_ACTIONS  # not for `gateway get` read locally

    parser.add_argument("--repository", required=create, metavar="REPO")
    parser.add_argument("--working-dir", metavar="DIR", help="directory inside the repository (default: its root)")
    parser.add_argument("--filename", metavar="FILE", action="append",
                        help="script, playbook or executable to run (once: more playbooks go with --playbook)")
    parser.add_argument("--decorator", metavar="NAME", help="JSON Schema the inputs must satisfy")
    parser.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment variable; repeatable")
    parser.add_argument("--secret", action="append", metavar="name=SECRET,type=env,target=ENV_VAR",
                        help="secret put into the environment; repeatable")
    parser.add_argument("--runtime-arg", action="append", metavar="ARG",
                        help="extra argument for the runtime (for example an inventory); repeatable")
    parser.add_argument("--requirements-file", "--req-file", dest="requirements_file", metavar="FILE",
                        help="requirements file (default: requirements.txt / requirements.yml when present); "
                             "--req-file is IAG 5's spelling")
    parser.add_argument("--tag", action="append", metavar="TAG", help="repeatable")
    parser.add_argument("--runner-tag", action="append", metavar="TAG",
                        help="with runners: run only on a runner that has this tag; repeatable")
    parser.add_argument("--arg-format", metavar="FORMAT", help="how an executable gets inputs (default '--{key} {value}', as IAG 5's '--{{.Key}} {{.Value}}')")
    parser.add_argument("--timeout", type=int, metavar="SECONDS", help="run time limit")
    ansible = parser.add_argument_group("ansible-playbook")
    ansible.add_argument("--playbook", action="append", metavar="FILE",
                         help="a playbook, run in turn after --filename; repeatable")
    ansible.add_argument("--inventory", action="append", metavar="PATH",
                         help="inventory file, folder or executable script (relative to the working dir); repeatable")
    ansible.add_argument("--extra-vars", action="append", metavar="K=V|JSON", help="extra variables; repeatable")
    ansible.add_argument("--extra-vars-file", action="append", metavar="FILE",
                         help="a YAML or JSON file of extra variables (relative to the working dir); repeatable")
    ansible.add_argument("--config-file", metavar="FILE", help="the ansible.cfg to use (relative to the working dir)")
    ansible.add_argument("--galaxy-registry", metavar="NAME",
                         help="the ansible-galaxy registry requirements.yml installs from (default: the default one)")
    parser.add_argument("--pypi-registry", metavar="NAME",
                        help="the pypi registry requirements install from (default: the default one)")
    parser.add_argument("--executable", "--executable-object", dest="executable", metavar="NAME",
                        help="executable: the executable object that runs it (--executable-object: IAG 5's spelling)")
    # opentofu-plan
    parser.add_argument("--action", choices=TOFU_ACTIONS, metavar="ACTION",
                        help="opentofu-plan: what a run does when it names nothing (plan | apply | destroy; default plan)")
    parser.add_argument("--var", "--vars", dest="var", action="append", metavar="KEY=VALUE",
                        help="opentofu-plan: -var; repeatable (--vars: the same)")
    parser.add_argument("--var-file", action="append", metavar="FILE",
                        help="opentofu-plan: -var-file, relative to the working dir; repeatable")
    parser.add_argument("--backend-config", action="append", metavar="KEY=VALUE|FILE",
                        help="opentofu-plan: init's -backend-config; repeatable")
    parser.add_argument("--description")


def _registry_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--url", required=create, help="the index (https://host/simple) or Galaxy server URL")
    parser.add_argument("--username", metavar="NAME")
    parser.add_argument("--password-name", metavar="SECRET", help="the secret holding the password")
    parser.add_argument("--token-name", metavar="SECRET", help="the secret holding a token")
    parser.add_argument("--insecure", action=argparse.BooleanOptionalAction, default=None,
                        help="do not verify the server's certificate, and allow credentials over plain http://")
    parser.add_argument("--default", action=argparse.BooleanOptionalAction, default=None,
                        help="the default registry of its type")
    parser.add_argument("--description")


def _executable_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--exec-command", required=create, metavar="COMMAND",
                        help="the interpreter or binary, with its arguments (split as a shell would)")
    parser.add_argument("--arg-format", metavar="FORMAT",
                        help="how inputs become arguments: '--{key} {value}' (the default) or IAG 5's '--{{.Key}} {{.Value}}'")
    parser.add_argument("--description")


def _role_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=ROLE_CHOICES, metavar="ROLE",
                        help="admin (everything), editor (create, edit, delete; run), operator (run; read), "
                             "viewer (read)")
    parser.add_argument("--scope", action="append", metavar="tag=TAG",
                        help="only services, repositories and secrets with this tag (editor, operator, viewer); "
                             "repeatable: any of them")


def _user_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--admin", action="store_true", help="the role admin (as --role admin)")
    _role_flags(parser)
    password = parser.add_mutually_exclusive_group()
    password.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    password.add_argument("--temp-password", action="store_true",
                          help="make a random temporary password, print it once; it must be changed at the first login")


def _decorator_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--schema", required=create, metavar="FILE|@FILE|JSON",
                        help="the schema: a JSON or YAML file (@FILE as IAG 5 writes it; - for stdin), or the JSON "
                             "itself in quotes")
    parser.add_argument("--description")


def _secret_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--value", help="the value (visible in shell history and ps; prefer --value-file or stdin); "
                        "@FILE reads it from FILE, as IAG 5 does")
    source.add_argument("--value-file", metavar="FILE", help="read the value from FILE (- for stdin)")
    parser.add_argument("--provider", metavar="PROVIDER",
                        help="an alias: the secret provider that holds the value (fetched when a run is prepared)")
    parser.add_argument("--secret", dest="path", metavar="PATH",
                        help="an alias: the secret's path at the provider (vault: in its mount; cyberark: Safe/Object)")
    parser.add_argument("--key", metavar="FIELD", help="an alias: the field of the secret (default: its only one)")
    parser.add_argument("--description")
    parser.add_argument("--tag", action="append", metavar="TAG",
                        help="repeatable; a user scoped to tags sees the secret when one of them matches")
    _encryption_flag(parser)


def _encryption_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encryption-file", metavar="FILE",
                        help="local mode: the key file to seal and open secrets with for this command (as "
                             "[secrets] encrypt_key_file; IAG 5's flag). A server seals with its own key")


def _provider_flags(parser: argparse.ArgumentParser, create: bool) -> None:
    from gateway_daemon.core.resources.secret_providers import AUTH_METHODS, PROVIDER_TYPES  # not for a local read

    parser.add_argument("--type", required=create, choices=PROVIDER_TYPES, metavar="TYPE",
                        help=" | ".join(PROVIDER_TYPES))
    parser.add_argument("--url", help="vault, cyberark: the provider's https:// URL")
    parser.add_argument("--auth-method", choices=AUTH_METHODS, metavar="METHOD", help="vault: token | approle")
    parser.add_argument("--secrets-endpoint", metavar="MOUNT", help="vault: the KV v2 mount, for example secret")
    parser.add_argument("--token", dest="token_file", metavar="FILE",
                        help="vault token auth: the file on the gateway host holding the token (read at each fetch)")
    parser.add_argument("--role-id", metavar="ID", help="vault approle: the role id")
    parser.add_argument("--secret-id-file", metavar="FILE", help="vault approle: the file holding the secret id")
    parser.add_argument("--app-id", metavar="ID", help="cyberark: the application id")
    parser.add_argument("--certificate-file", metavar="FILE", help="cyberark: the client certificate (mutual TLS)")
    parser.add_argument("--private-key-file", metavar="FILE", help="cyberark: the client certificate's key")
    parser.add_argument("--ca-file", metavar="FILE", help="the CA of the provider's certificate (default: the system's)")
    parser.add_argument("--command", metavar="PATH", help="plugin: the program, run as PATH get")
    parser.add_argument("--env", action="append", metavar="KEY=VALUE", help="plugin: handed to it; repeatable")
    parser.add_argument("--description")


_FLAGS = {"repository": _repository_flags, "service": _service_flags, "decorator": _decorator_flags,
          "secret": _secret_flags, "registry": _registry_flags, "executable-object": _executable_flags,
          "secret-provider": _provider_flags}


def build_parser() -> Parser:
    from gateway_daemon.core.resources.services import SERVICE_TYPES, TOFU_ACTIONS  # not for `gateway get` read locally

    parser = Parser(
        prog="gateway",
        description="Automation gateway: run with no arguments for the terminal UI, or use a verb below.",
    )
    common(parser)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)

    create = _sub(verbs, "create", "create a repository, decorator, service or secret",
                  iagctl="iagctl create repository|decorator|service|secret|user NAME ...")
    create_kinds = create.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    for kind in ("repository", "decorator", "secret"):
        sub = _sub(create_kinds, kind, f"create a {kind}", output=True, iagctl=f"iagctl create {kind} NAME ...")
        sub.add_argument("name")
        _FLAGS[kind](sub, create=True)
    user = _sub(create_kinds, "user", "create a user (client mode, admins only)", output=True,
                iagctl="iagctl create user NAME [--temp-password]")
    user.add_argument("name")
    _user_flags(user)
    service = _sub(create_kinds, "service", "create a service", output=True,
                   iagctl="iagctl create service python-script|ansible-playbook|opentofu-plan|executable NAME ...")
    service.add_argument("type", choices=SERVICE_TYPES, metavar="TYPE", help=" | ".join(SERVICE_TYPES))
    service.add_argument("name")
    _service_flags(service, create=True)
    registry = _sub(create_kinds, "registry", "create a registry (where installs come from)", output=True,
                    iagctl="iagctl create registry pypi|ansible-galaxy NAME --url URL ...")
    registry.add_argument("type", choices=REGISTRY_TYPES, metavar="TYPE", help=" | ".join(REGISTRY_TYPES))
    registry.add_argument("name")
    _registry_flags(registry, create=True)
    executable = _sub(create_kinds, "executable-object", "create an executable object (an interpreter or binary "
                      "services use)", output=True,
                      iagctl="iagctl create executable-object NAME --exec-command COMMAND [--arg-format F]")
    executable.add_argument("name")
    _executable_flags(executable, create=True)
    provider = _sub(create_kinds, "secret-provider", "create a secret provider (Vault, CyberArk CCP or a plugin "
                    "that holds the values of aliases; admins)", output=True,
                    iagctl="iagctl create secret-provider NAME --type vault|cyberark|plugin ...")
    provider.add_argument("name")
    _provider_flags(provider, create=True)

    get = _sub(verbs, "get", "list resources or runs", output=True,
               iagctl="iagctl get services|repositories|decorators|secrets|users [--type T] [--tag T]")
    get.add_argument("kind", metavar="KIND",
                     help="repositories | decorators | services | secrets | runs | users | runners | audit | apikeys"
                     ).complete = COMPLETE_KIND  # type: ignore[attr-defined]
    get.add_argument("--type", metavar="TYPE", choices=SERVICE_TYPES, help="services: only of this type")
    get.add_argument("--tag", action="append", metavar="TAG",
                     help="services, repositories, secrets: only those with this tag; repeatable (all must "
                          "match). Decorators carry no tags: with --tag none is listed")
    get.add_argument("--service", metavar="NAME", help="runs: only of this service")
    get.add_argument("--status", metavar="STATUS", help="runs: only with this status")
    get.add_argument("--runner", metavar="ID", help="runs: only those this runner executed")
    get.add_argument("--limit", type=int, default=50, metavar="N", help="runs: at most N, newest first (0: all)")
    get.add_argument("--user", metavar="NAME", help="audit: only what this user did")
    get.add_argument("--action", metavar="ACTION",
                     help="audit: only this action (create, edit, delete, run, reveal, export, import, login, ...)")
    get.add_argument("--since", metavar="TIME", help="audit: only since this ISO time, or this age (30m, 2h, 7d)")

    run = _sub(verbs, "run", "run a service and stream its output",
               iagctl="iagctl run service python-script|ansible-playbook|opentofu-plan|executable NAME")
    run_kinds = run.add_subparsers(dest="kind", metavar="service", required=True, parser_class=Parser)
    run_service = _sub(run_kinds, "service", "run a service", output=True,
                       iagctl="iagctl run service python-script NAME --set KEY=VALUE (the type word is optional here); "
                              "run service opentofu-plan plan|apply|destroy NAME")
    run_service.add_argument("first", metavar="[TYPE] [ACTION] NAME",
                             help=f"the service, after its type if you like ({' | '.join(SERVICE_TYPES)}); an "
                                  f"opentofu-plan's action ({' | '.join(TOFU_ACTIONS)}) before its name"
                             ).complete = COMPLETE_NAME  # type: ignore[attr-defined]
    run_service.add_argument("second", nargs="?", help=argparse.SUPPRESS)
    run_service.add_argument("third", nargs="?", help=argparse.SUPPRESS)
    run_service.add_argument("--set", action="append", metavar="KEY=VALUE",
                             help="an input; repeatable. A bare KEY sets a boolean input the decorator declares to true")
    run_service.add_argument("--use", action="store_true",
                             help="print the inputs the service accepts (from its decorator) and run nothing")
    run_service.add_argument("--set-secret", action="append", metavar="name=SECRET,type=env,target=ENV_VAR",
                             help="a secret for this run, over the service's; repeatable")
    run_service.add_argument("--timeout", type=int, metavar="SECONDS", help="time limit for this run")
    playbook = run_service.add_argument_group("ansible-playbook")
    playbook.add_argument("--limit", metavar="PATTERN", help="only these hosts (ansible-playbook --limit)")
    playbook.add_argument("--tags", metavar="TAGS", help="only tasks with these tags (comma separated)")
    playbook.add_argument("--check", action="store_true", help="check mode: change nothing, say what would change")
    run_service.add_argument("--state", metavar="FILE|@FILE|JSON", help="opentofu-plan: start from this state "
                             "instead of the stored one (an apply or destroy stores what it ends with): a file, "
                             "@FILE as IAG 5 (the state the run ends with is written back to it, unless "
                             "--state-out), or the JSON itself")
    run_service.add_argument("--state-out", metavar="FILE", help="opentofu-plan: write the state the run ends "
                             "with to this file")

    logs = _sub(verbs, "logs", "print a run's output", iagctl="none (this gateway keeps run history)")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")

    cancel = _sub(verbs, "cancel", "cancel a queued or running run", iagctl="none (this gateway keeps run history)")
    cancel_kinds = cancel.add_subparsers(dest="kind", metavar="run", required=True, parser_class=Parser)
    cancel_run = _sub(cancel_kinds, "run", "cancel a run", iagctl="none (this gateway keeps run history)")
    cancel_run.add_argument("run_id", metavar="RUN_ID")

    hostkeys = _sub(verbs, "hostkeys", "SSH host keys the gateway trusts for git over ssh",
                    iagctl="iagctl hostkeys add HOST TYPE KEY | scan HOST | clear")
    hostkey_verbs = hostkeys.add_subparsers(dest="hostkeys_verb", metavar="add|get|delete|scan|clear", required=True,
                                            parser_class=Parser)
    add = _sub(hostkey_verbs, "add", "trust a host's key given here (HOST TYPE KEY), or fetch its keys (HOST alone: "
               "ssh-keyscan) and trust them", iagctl="iagctl hostkeys add HOST TYPE KEY [--replace]")
    add.add_argument("host")
    add.add_argument("key_type", nargs="?", metavar="TYPE", help="for example ssh-ed25519 (a line of ssh-keyscan)")
    add.add_argument("key", nargs="?", metavar="KEY", help="the base64 public key")
    add.add_argument("--port", type=int, default=22)
    add.add_argument("--replace", action="store_true", help="replace the host's trusted key of this TYPE")
    scan = _sub(hostkey_verbs, "scan", "fetch a host's keys (ssh-keyscan), print them and trust them",
                iagctl="iagctl hostkeys scan HOST")
    scan.add_argument("host")
    scan.add_argument("--port", type=int, default=22)
    _sub(hostkey_verbs, "get", "list the trusted host keys", output=True, iagctl="iagctl hostkeys get")
    remove = _sub(hostkey_verbs, "delete", "stop trusting a host's keys", iagctl="iagctl hostkeys delete HOST")
    remove.add_argument("host")
    remove.add_argument("--port", type=int, default=22)
    _sub(hostkey_verbs, "clear", "stop trusting every host key", iagctl="iagctl hostkeys clear")

    describe = _sub(verbs, "describe", "show one resource", output=True,
                    iagctl="iagctl describe service|repository|decorator|secret|user NAME")
    describe.add_argument("kind", metavar="KIND").complete = COMPLETE_KIND  # type: ignore[attr-defined]
    describe.add_argument("name").complete = COMPLETE_NAME  # type: ignore[attr-defined]
    describe.add_argument("--reveal", action="store_true", help="secrets only: show the value")
    describe.add_argument("--editor", action="store_true",
                          help="secrets only: open the value in $EDITOR (vi when unset), as IAG 5's describe secret "
                               "does; the temporary file is removed afterwards")
    _encryption_flag(describe)

    edit = _sub(verbs, "edit", "change a resource (flags as for create; list flags replace the list)",
                iagctl="iagctl edit repository|decorator|service|secret|user NAME ...")
    edit_kinds = edit.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    for kind in ("repository", "decorator", "service", "secret", "registry", "executable-object", "secret-provider"):
        sub = _sub(edit_kinds, kind, f"change a {kind}", output=True, iagctl=f"iagctl edit {kind} NAME ...")
        sub.add_argument("name").complete = COMPLETE_NAME  # type: ignore[attr-defined]
        _FLAGS[kind](sub, create=False)
        if kind in ("repository", "service", "secret"):
            sub.add_argument("--clear", action="append", metavar="FIELD", default=[],
                             help="empty a field (for example tag, env, secret, decorator); repeatable")

    edit_user = _sub(edit_kinds, "user", "change a user (client mode, admins only)", output=True,
                     iagctl="iagctl edit user NAME ...")
    edit_user.add_argument("name")
    edit_user.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None,
                           help="the role admin (--admin, as --role admin) or, from admin, viewer (--no-admin)")
    _role_flags(edit_user)
    edit_user.add_argument("--no-scope", action="store_true", help="lift the scope: every service")
    edit_user.add_argument("--unlock", action="store_true", help="let the user log in again after failed logins")
    edit_user.add_argument("--password-stdin", action="store_true", help="set a new password read from stdin")

    login = _sub(verbs, "login", "log in to the server (client mode); the API key goes to the OS keyring",
                 iagctl="iagctl login USER")
    login.add_argument("user", nargs="?", metavar="USER", help="the user (or --username)")
    login.add_argument("--username", metavar="NAME")
    login.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin (with --change-password: the old, then the new, one per line)")
    login.add_argument("--change-password", action="store_true", help="set a new password (revokes every API key)")
    _sub(verbs, "logout", "log out: revoke the API key and forget it", iagctl="iagctl logout")
    _sub(verbs, "whoami", "who is logged in, to which server, until when", output=True, iagctl="iagctl whoami")

    certs = _sub(verbs, "cert-gen",
                 "with no TYPE: make a CA, a server certificate and a client certificate (NAME.crt, NAME.key) in "
                 "--dir. With TYPE (as iagctl): make one of them as NAME.pem and NAME-key.pem in --output; server, "
                 "client and runner are signed by ca.pem and ca-key.pem found there",
                 iagctl="iagctl cert-gen ca|server|client|runner --cn NAME --sans A,B --output DIR")
    certs.add_argument("type", nargs="?", choices=CERT_TYPES, metavar="TYPE", help=" | ".join(CERT_TYPES))
    certs.add_argument("--dir", default="./gateway-certs", metavar="DIR", help="no TYPE: where to write them (default: ./gateway-certs)")
    certs.add_argument("--host", action="append", metavar="NAME",
                       help="a name or address the server is reached by; repeatable (default: localhost, 127.0.0.1)")
    certs.add_argument("--force", action="store_true", help="overwrite certificates already there (with TYPE: the CA)")
    certs.add_argument("--output", metavar="DIR", help="TYPE: where to write, and where ca.pem is (default: .)")
    certs.add_argument("--name", metavar="NAME", help="TYPE: the files' name (default: the TYPE)")
    certs.add_argument("--cn", metavar="NAME", help="TYPE: the common name")
    certs.add_argument("--sans", action="append", metavar="A,B", help="TYPE: subject alternative names (names or "
                       "addresses, comma separated); repeatable (server and runner default: localhost, 127.0.0.1)")
    certs.add_argument("--expiry", type=int, metavar="DAYS", help="days it is valid (default: CA 3650, others 825)")
    certs.add_argument("--key-algo", choices=("ecdsa", "rsa"), default="ecdsa", help="key algorithm (default: ecdsa)")
    certs.add_argument("--key-size", type=int, metavar="BITS",
                       help="rsa: 2048, 3072 or 4096 (default 2048); ecdsa: 256, 384 or 521 (default 256)")
    for flag, what in (("--country", "two letters"), ("--state", "state or province"), ("--locality", "city"),
                       ("--org", "organization"), ("--ou", "organizational unit")):
        certs.add_argument(flag, metavar="TEXT", help=f"TYPE: the subject's {what}")

    delete = _sub(verbs, "delete", "delete a resource (refused while something uses it), or a finished run with "
                  "its output (delete run ID; admins)",
                  iagctl="iagctl delete service|repository|decorator|secret|user NAME")
    delete.add_argument("kind", metavar="KIND").complete = COMPLETE_KIND  # type: ignore[attr-defined]
    delete.add_argument("name").complete = COMPLETE_NAME  # type: ignore[attr-defined]

    prune = _sub(verbs, "prune", "delete every finished run created before a time, with its output (admins)",
                 iagctl="none (IAG 5 keeps no run history)")
    prune_kinds = prune.add_subparsers(dest="kind", metavar="runs", required=True, parser_class=Parser)
    prune_runs = _sub(prune_kinds, "runs", "delete every finished run created before --before, with its output",
                      iagctl="none (IAG 5 keeps no run history)")
    prune_runs.add_argument("--before", required=True, metavar="TIME",
                            help="an ISO time (2024-05-01T12:00:00Z), a date (2024-05-01) or an age (2h, 7d)")
    prune_runs.add_argument("--service", metavar="NAME", help="only this service's runs")

    db = _sub(verbs, "db", "export or import every resource (YAML)", iagctl="iagctl db export FILE | db import FILE")
    db_verbs = db.add_subparsers(dest="db_verb", metavar="export|import", required=True, parser_class=Parser)
    export = _sub(db_verbs, "export", "write every resource as YAML (secrets stay encrypted)",
                  iagctl="iagctl db export [--file FILE] [-f json|yaml]")
    export.add_argument("file", nargs="?", metavar="FILE", help="file to write (or -o FILE; default: stdout)")
    export.add_argument("-o", "--output", "--file", metavar="FILE", default=None,
                        help="file to write (default: stdout)")
    export.add_argument("-f", "--format", action="append", choices=EXPORT_FORMATS, metavar="FORMAT", default=None,
                        help="yaml (the default) or json; iag5: IAG 5's layout, for its `iagctl db import` (what "
                             "it cannot express is listed on stderr); both may be given: --format iag5 -f json")
    imp = _sub(db_verbs, "import", "read a YAML export (ours or the IAG 5 format); all or nothing. Resources that "
               "exist are replaced (iagctl's --force is what an import here does in any case)",
               iagctl="iagctl db import FILE [--validate | --check] [--force] [--repository URL]")
    imp.add_argument("file", nargs="?", metavar="FILE",
                     help=f"file to read (- for stdin; with --repository: a path in it, default {REPOSITORY_FILES[0]})")
    imp.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    imp.add_argument("--strict", action="store_true", help="refuse unknown keys instead of reporting them")
    imp.add_argument("--check", action="store_true",
                     help="as iagctl: say for each resource whether it would be created, is unchanged or is a "
                          "conflict (differs from what is stored: the import replaces it); list every problem; "
                          "change nothing")
    imp.add_argument("--validate", action="store_true",
                     help="as iagctl: check the file (fields, references), print only the verdict, change nothing")
    imp.add_argument("--force", action="store_true", help="as iagctl: replace resources that exist (always done here)")
    imp.add_argument("--repository", metavar="URL",
                     help="as iagctl: read FILE from this git repository (https, ssh, file:// or a local path)")
    imp.add_argument("--reference", metavar="REF", help="with --repository: branch, tag or commit (default: HEAD)")
    imp.add_argument("--private-key-name", metavar="SECRET", help="with --repository over ssh: the secret with the key")

    inspect = _sub(verbs, "inspect", "the health and activity of the cluster (IAG 5.4)", output=True,
                   iagctl="iagctl inspect cluster [health|activity]")
    inspect.add_argument("what", choices=("cluster",), metavar="cluster")
    inspect.add_argument("part", nargs="?", choices=("health", "activity"), metavar="health|activity",
                         help="health: the store, the servers and the runners, their state and load; activity: "
                              "runs in flight and those ended in the last 15 minutes (default: both)")

    _sub(verbs, "config", "print the effective configuration and where each value comes from", output=True,
         iagctl="iagctl version --show-config")
    version = _sub(verbs, "version", "print the version of this gateway", iagctl="iagctl version [--show-config]")
    version.add_argument("--show-config", action="store_true", help="and the effective configuration")
    completion = _sub(verbs, "completion", "print a shell completion script (generated from these verbs)",
                      iagctl="iagctl completion bash|zsh|fish")
    completion.add_argument("shell", choices=COMPLETION_SHELLS, metavar="SHELL", help=" | ".join(COMPLETION_SHELLS))
    return parser


def kind_word(word: str) -> str:
    try:
        return KIND_WORDS[word.lower()]
    except KeyError:
        raise UsageError(
            f"unknown kind {word!r}; use repositories, decorators, services, secrets, secret-providers, registries, "
            "executable-objects, "
            "runs, users, runners, audit or apikeys"
        ) from None


# Options whose values usually start with '-' (`--runtime-arg -i`, `--arg-format '--{key}={value}'`):
# argparse would take such a value for an option, so the pair is joined as `--option=value` first.
DASH_VALUED = ("--runtime-arg", "--arg-format", "--exec-command")


def join_dash_values(argv: list[str]) -> list[str]:
    joined: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            joined.extend(argv[index:])
            break
        if word in DASH_VALUED and index + 1 < len(argv):
            joined.append(f"{word}={argv[index + 1]}")
            index += 2
            continue
        joined.append(word)
        index += 1
    return joined


# Spellings of earlier IAG 5 documents: each answers with the current form (exit 2).
OLD_SERVICE_WORDS = {"pythonscript": "python-script", "python-script": "python-script",
                     "ansible-playbook": "ansible-playbook", "ansibleplaybook": "ansible-playbook",
                     "opentofu-plan": "opentofu-plan", "opentofuplan": "opentofu-plan", "executable": "executable"}


def old_spelling(argv: list[str]) -> str | None:
    """The current form of an old iagctl line (`run pythonscript NAME`, `users create NAME`), else None."""
    from gateway_daemon.core.resources.services import TOFU_ACTIONS  # not for `gateway get` read locally

    words = [word for word in argv if not word.startswith("-")]
    if len(words) < 2:
        return None
    verb, second = words[0], words[1]
    rest = words[2:]
    name = f" {rest[0]}" if rest else " NAME"
    if verb in ("run", "create", "describe", "edit", "delete") and second in OLD_SERVICE_WORDS:
        kind = OLD_SERVICE_WORDS[second]
        if verb == "run" and kind == "opentofu-plan" and rest and rest[0] in TOFU_ACTIONS:
            return f"gateway run service opentofu-plan {rest[0]}{f' {rest[1]}' if len(rest) > 1 else ' NAME'}"
        if verb in ("run", "create"):
            return f"gateway {verb} service {kind}{name}"
        return f"gateway {verb} service{name}"
    if verb in ("users", "user") and second in ("create", "get", "describe", "edit", "delete"):
        return f"gateway {second} user{name}" if second != "get" else "gateway get users"
    return None


def parse(argv: list[str]) -> argparse.Namespace:
    if not argv:  # the terminal UI: what the grammar gives for no words, without building it
        return argparse.Namespace(verb=None)
    current = old_spelling(argv)
    if current:
        raise UsageError(f"an earlier IAG 5 spelling; use: {current}")
    args = build_parser().parse_args(join_dash_values(argv))
    if isinstance(getattr(args, "filename", None), list):
        if len(args.filename) > 1:
            raise UsageError(f"--filename given {len(args.filename)} times ({', '.join(args.filename)}): a service "
                             "runs one file; an ansible-playbook service takes more playbooks with --playbook")
        args.filename = args.filename[0]
    if args.verb == "run":
        _service_words(args)
    elif args.verb == "login":
        if args.user and args.username and args.user != args.username:
            raise UsageError(f"two users given: {args.user} and --username {args.username}")
        args.username = args.username or args.user
    elif args.verb == "db" and args.db_verb == "export":
        if args.file and args.output and args.file != args.output:
            raise UsageError(f"two files given: {args.file} and -o {args.output}")
        args.output = args.file or args.output or "-"
    elif args.verb == "db" and args.db_verb == "import":
        if args.file is None and not args.repository:
            raise UsageError("db import: give the FILE to read (- for stdin)")
        if args.validate and args.check:
            raise UsageError("give --validate or --check, not both")
        for flag in ("reference", "private_key_name"):
            if getattr(args, flag) and not args.repository:
                raise UsageError(f"--{flag.replace('_', '-')} goes with --repository URL")
    elif args.verb == "hostkeys" and args.hostkeys_verb == "add":
        if args.key_type and not args.key:
            raise UsageError("hostkeys add HOST TYPE KEY: the KEY is missing")
        if args.replace and not args.key:
            raise UsageError("--replace goes with a key given here: hostkeys add HOST TYPE KEY --replace")
    elif args.verb == "describe" and (args.editor or args.reveal or args.encryption_file) \
            and kind_word(args.kind) != "secret":
        flag = "--editor" if args.editor else "--reveal" if args.reveal else "--encryption-file"
        raise UsageError(f"{flag} is for secrets only")
    elif args.verb == "get" and args.type and kind_word(args.kind) != "service":
        raise UsageError("--type is for services")
    if args.verb == "get" and args.tag and kind_word(args.kind) in ("run", "user", "runner", "audit", "apikey"):
        raise UsageError("--tag is for services, repositories, decorators and secrets")
    if args.verb == "get" and (args.user or args.action or args.since) and kind_word(args.kind) != "audit":
        raise UsageError("--user, --action and --since are for: gateway get audit")
    if getattr(args, "raw", False) and args.verb in ("get", "describe", "whoami") and args.output == "table":
        args.output = "json"  # iagctl's --raw: the result as data
    return args


def _service_words(args: argparse.Namespace) -> None:
    """`run service [TYPE] [ACTION] NAME`: the type word is optional, as iagctl writes it or not; an
    opentofu-plan run may name its action (plan, apply, destroy) before the service."""
    from gateway_daemon.core.resources.services import SERVICE_TYPES, TOFU_ACTIONS

    words = [word for word in (args.first, args.second, args.third) if word is not None]
    args.service_type, args.action = None, ""
    if len(words) == 3:
        if words[0] in SERVICE_TYPES and words[0] != "opentofu-plan":
            raise UsageError(f"unrecognized arguments: {words[2]} (see: gateway run service --help)")
        if words[0] != "opentofu-plan" or words[1] not in TOFU_ACTIONS:
            raise UsageError(f"run service {' '.join(words)}: three words are opentofu-plan ACTION NAME, with "
                             f"ACTION one of {', '.join(TOFU_ACTIONS)}")
        args.service_type, args.action = words[0], words[1]
    elif len(words) == 2:
        if words[0] in SERVICE_TYPES:
            args.service_type = words[0]
        elif words[0] in TOFU_ACTIONS:
            args.action = words[0]
        else:
            raise UsageError(f"{words[0]!r} is not a service type; use {', '.join(SERVICE_TYPES)} "
                             f"(or an opentofu-plan action: {', '.join(TOFU_ACTIONS)}; see: gateway run service --help)")
    args.name = words[-1]


def print_usage_error(error: UsageError) -> None:
    print(f"gateway: {error}", file=sys.stderr)
