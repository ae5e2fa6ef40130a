"""A new account's config, as each tool reads it: the lines users otherwise copy from a tutorial.

Every stanza says where the endpoint came from and that it is Implicit TLS (or why STARTTLS), sets
the TLS mode and the trust explicitly (never a default that an older or newer tool reads another
way), and takes the password from a command, never in clear: the command given, or a commented
example to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailpin.model import Mode


@dataclass(frozen=True)
class NewAccount:
    name: str  # the account's name in the tool's config
    address: str
    host: str
    port: int
    mode: Mode  # IMPLICIT, or STARTTLS when nothing better was found
    found: str  # where the endpoint came from, for the comment
    user: str
    password_command: str | None
    trust_file: str | None  # None: the system's CA store
    maildir: str = ""  # mbsync / offlineimap: where the mail goes


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _head(account: NewAccount, today: str) -> list[str]:
    how = "Implicit TLS (RFC 8314)" if account.mode is Mode.IMPLICIT else "STARTTLS (no Implicit TLS found)"
    return [f"# {account.address}: set up by `mailpin setup` on {today}; {how}, found by {account.found}"]


def msmtp(account: NewAccount, today: str) -> str:
    lines = [*_head(account, today), f"account {account.name}", f"host {account.host}", f"port {account.port}"]
    lines += ["tls on", f"tls_starttls {'off' if account.mode is Mode.IMPLICIT else 'on'}"]
    lines.append(f"tls_trust_file {account.trust_file or 'system'}")
    lines += [f"from {account.address}", "auth on", f"user {account.user}"]
    if account.password_command:
        lines.append(f"passwordeval {_quoted(account.password_command)}")
    else:
        lines.append(f'# passwordeval "pass show mail/{account.name}"   # how msmtp gets the password; never in clear')
    return "\n".join(lines) + "\n"


def mbsync(account: NewAccount, today: str, version: tuple[int, int] | None) -> str:
    """isync 1.5 calls it TLSType, 1.4 (Debian 12) knows only SSLType: the installed one's word."""
    keyword = "TLSType" if version is not None and version >= (1, 5) else "SSLType"
    mode = "IMAPS" if account.mode is Mode.IMPLICIT else "STARTTLS"
    box = account.maildir.rstrip("/")
    lines = [*_head(account, today), f"IMAPAccount {account.name}", f"Host {account.host}", f"Port {account.port}"]
    lines += [f"User {account.user}"]
    if account.password_command:
        lines.append(f"PassCmd {_quoted(account.password_command)}")
    else:
        lines.append(f'# PassCmd "pass show mail/{account.name}"   # how mbsync gets the password; never in clear')
    lines.append(f"{keyword} {mode}")
    if account.trust_file:
        lines += [f"CertificateFile {account.trust_file}", "SystemCertificates no"]
    lines += ["", f"IMAPStore {account.name}-remote", f"Account {account.name}", ""]
    lines += [f"MaildirStore {account.name}-local", f"Path {box}/", f"Inbox {box}/INBOX", "SubFolders Verbatim", ""]
    lines += [f"Channel {account.name}", f"Far :{account.name}-remote:", f"Near :{account.name}-local:"]
    lines += ["Patterns *", "Create Near", "SyncState *"]
    return "\n".join(lines) + "\n"


def offlineimap(account: NewAccount, today: str, with_general: bool) -> str:
    """WITH_GENERAL: a whole file (offlineimap reads its accounts from `[general] accounts`)."""
    lines = _head(account, today)
    if with_general:
        lines += ["[general]", f"accounts = {account.name}", ""]
    lines += [f"[Account {account.name}]", f"localrepository = {account.name}-local"]
    lines += [f"remoterepository = {account.name}-remote", ""]
    lines += [f"[Repository {account.name}-local]", "type = Maildir", f"localfolders = {account.maildir}", ""]
    lines += [f"[Repository {account.name}-remote]", "type = IMAP", f"remotehost = {account.host}"]
    lines += [f"remoteport = {account.port}", f"ssl = {'yes' if account.mode is Mode.IMPLICIT else 'no'}"]
    if account.mode is not Mode.IMPLICIT:
        lines.append("starttls = yes")
    lines.append(f"sslcacertfile = {account.trust_file or 'OS-DEFAULT'}")
    lines.append(f"remoteuser = {account.user}")
    if account.password_command:
        lines.append(f"remotepasseval = __import__('subprocess').check_output({account.password_command!r}, "
                     "shell=True, text=True).rstrip('\\n')")  # fmt: skip
    else:
        lines.append("# remotepasseval = ...   # how offlineimap gets the password (pythonfile); never in clear")
    return "\n".join(lines) + "\n"
