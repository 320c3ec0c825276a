"""A private Dovecot 2.3 for tests: one temp directory, loopback only, no system paths.

Everything the instance needs (config, run dir, state, TLS material, users, Maildirs, logs)
lives in one directory, so several instances can run side by side and nothing under
/etc/dovecot, /run or /var is touched. The settings follow the team's notes "Running a
private Dovecot for tests"; the comments in the config say which failure each one avoids.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import ipaddress
import os
import pwd
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# imapclient ships no type information (pyproject sets ignore_missing_imports).
from imapclient import IMAPClient

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
# Debian puts the daemon in /usr/sbin, which is not on every user's PATH.
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# Names end up in passwd-file lines (':'-separated) and in home directory paths.
_USER_NAME = re.compile(r"[A-Za-z0-9_+\-@][A-Za-z0-9_.+\-@]*")


@dataclass(frozen=True)
class _Account:
    """Who the Dovecot processes run as, and therefore who owns their files."""

    uid: int
    gid: int
    user: str
    group: str

    @classmethod
    def for_this_process(cls) -> _Account:
        # Dovecot refuses uid 0 for mail access (and the notes' root attempts failed), so
        # root drops the whole instance to nobody; anyone else runs it as themselves.
        pw = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        return cls(pw.pw_uid, pw.pw_gid, pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name)

    def command_prefix(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        setpriv = _find_program("setpriv")
        if setpriv is None:
            raise RuntimeError("running as root needs setpriv (util-linux) to drop to nobody")
        return [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]

    def own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)


class Dovecot:
    """One private Dovecot instance; `start()` it, `add_user()`, point clients at the ports."""

    host = HOST

    def __init__(self, base_dir: Path | None = None) -> None:
        self._owns_dir = base_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-")) if base_dir is None else base_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._account = _Account.for_this_process()
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = _free_ports(4)
        self.config_path = self.dir / "dovecot.conf"
        self.log_path = self.dir / "dovecot.log"
        self.stdio_log_path = self.dir / "dovecot.stdio.log"
        self.run_dir = self.dir / "run"
        self.users_dir = self.dir / "users.d"
        self.homes_dir = self.dir / "home"
        tls_dir = self.dir / "tls"
        self.ca_file = str(tls_dir / "ca.pem")
        self._users: dict[str, str] = {}
        self._users_mtime: dict[str, int] = {}
        self._master_pid: int | None = None

        for sub in (self.dir, tls_dir, self.homes_dir, self.users_dir, self.dir / "state"):
            sub.mkdir(exist_ok=True)
        _write_tls(tls_dir)
        dh_file = _write_dh_params(tls_dir)
        self.config_path.write_text(self._config(tls_dir, dh_file))
        for path in self.dir.rglob("*"):
            self._account.own(path)
        self._account.own(self.dir)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            raise RuntimeError("this Dovecot instance is already running")
        self._master_pid = None
        binary = _ensure_dovecot()
        self._check_reachable_by_run_user()
        # A stale socket from the previous run (anvil-auth-penalty, which this config no
        # longer creates) made the first login after a restart wait ~5 s; remove them all.
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self._save_effective_config(binary)
        command = [*self._account.command_prefix(), binary, "-c", str(self.config_path)]
        # The master daemonises but keeps the fds it was given: pipes here would make
        # subprocess wait for it forever, so stdio goes to a file.
        with self.stdio_log_path.open("ab") as stdio:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdio,
                stderr=subprocess.STDOUT,
                timeout=START_TIMEOUT,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"dovecot exited with {result.returncode}\n{self._log_tail()}")
        self._master_pid = self._read_master_pid()
        try:
            self._wait_for_ports()
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        pid = self._master_pid
        if pid is None and (self.run_dir / "master.pid").exists():
            pid = int((self.run_dir / "master.pid").read_text().strip())
        self._master_pid = None
        if pid is None or not _alive(pid):
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.02)
        raise RuntimeError(f"dovecot master {pid} did not exit")

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and delete the directory if this object created it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._master_pid is not None and _alive(self._master_pid)

    # -- users and mail --------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create a user (or change its password); the next login sees it, no restart.

        A new user is visible at once; changing an existing one may wait up to 1 s (see
        `set_password`).
        """
        if not _USER_NAME.fullmatch(name):
            raise ValueError(f"unsupported user name for the test server: {name!r}")
        if name in self._users:
            self.set_password(name, password)
            return
        home = self.homes_dir / name
        home.mkdir(exist_ok=True)
        # Mail processes run as the run user and create ~/Maildir themselves.
        self._account.own(home)
        self._users[name] = password
        self._write_user(name)

    def set_password(self, name: str, password: str) -> None:
        """Change a password; returns once the next login is sure to use it (<= 1 s)."""
        if name not in self._users:
            raise KeyError(f"no such test user: {name}")
        self._users[name] = password
        self._write_user(name)
        # Dovecot stats a passwd-file at most once per wall-clock second: a login earlier in
        # this second may have cached the old password, and a login later in it would not
        # look again. From the next second on, the changed mtime makes it re-read.
        time.sleep(1.0 - time.time() % 1.0 + 0.01)

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> int | None:
        """Deliver `raw` by IMAP APPEND as `user`; returns the new UID (from APPENDUID)."""
        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=10)
        try:
            client.login(user, self._users[user])
            if folder != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw)
        finally:
            client.logout()
        text = response.decode() if isinstance(response, bytes) else str(response)
        match = re.search(r"\[APPENDUID \d+ (\d+)\]", text)
        return int(match.group(1)) if match else None

    def maildir(self, user: str) -> Path:
        return self.homes_dir / user / "Maildir"

    # -- internals -------------------------------------------------------------------------

    def _write_user(self, name: str) -> None:
        # One passwd-file per user (the config's path contains %u): Dovecot opens a file it
        # has not seen yet on the spot, so a new user needs no waiting at all.
        # PLAIN.B64 so that any password (':' included) fits the ':'-separated line.
        encoded = base64.b64encode(self._users[name].encode()).decode()
        path = self.users_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(f"{name}:{{PLAIN.B64}}{encoded}::::::\n")
        tmp.chmod(0o600)
        self._account.own(tmp)
        # Dovecot re-reads a known passwd-file only if its mtime (whole seconds) or size
        # changed: give every write a later mtime than the one before.
        mtime = max(int(time.time()), self._users_mtime.get(name, 0) + 1)
        self._users_mtime[name] = mtime
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)

    def _config(self, tls_dir: Path, dh_file: Path | None) -> str:
        account = self._account
        d = self.dir
        dh_line = f"ssl_dh = <{dh_file}\n" if dh_file else ""
        return f"""\
# Private test instance; complete on its own (no !include of /etc/dovecot).
# Without base_dir: "open() failed for /run/dovecot/login: Permission denied".
base_dir = {d}/run
# Without state_dir: dotlock errors on /var/lib/dovecot/instances.
state_dir = {d}/state
instance_name = mailroom-test-{d.name}
# Debian's default is empty: the master would start and listen on nothing.
protocols = imap pop3
listen = {HOST}

# Everything runs as one unprivileged account; Dovecot's own users (dovecot, dovenull)
# would need chown, which an unprivileged master cannot do.
default_internal_user = {account.user}
default_internal_group = {account.group}
default_login_user = {account.user}
first_valid_uid = {account.uid}
last_valid_uid = {account.uid}
first_valid_gid = {account.gid}
last_valid_gid = {account.gid}

mail_location = maildir:~/Maildir
# Lets tests create folders with '.' in the name (Maildir++ uses '.' on disk).
mail_plugins = $mail_plugins listescape
plugin {{
  listescape_char = "\\\\"
}}

# Loopback counts as secure anyway; say so explicitly instead of relying on that.
disable_plaintext_auth = no
auth_mechanisms = plain login
# The default 2 s made every wrong-password test slow.
auth_failure_delay = 0
auth_verbose = yes

ssl = yes
ssl_cert = <{tls_dir}/cert.pem
ssl_key = <{tls_dir}/key.pem
{dh_line}
# syslog is not kept in containers.
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}

passdb {{
  driver = passwd-file
  args = username_format=%u {self.users_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_dir}/%u
  default_fields = uid={account.uid} gid={account.gid} home={self.homes_dir}/%u
}}

# chroot needs root: without "chroot =" every connection gets EOF.
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = {HOST}
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = {HOST}
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: after one failed login, the next (even correct) login waited 4-15 s.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth-worker {{
  user = $default_internal_user
}}

# The default of 10 is too low for parallel tests.
protocol imap {{
  mail_max_userip_connections = 200
}}
protocol pop3 {{
  mail_max_userip_connections = 200
}}
"""

    def _save_effective_config(self, binary: str) -> None:
        doveconf = _find_program("doveconf") or str(Path(binary).with_name("doveconf"))
        with (self.dir / "dovecot.effective.conf").open("wb") as out:
            # Only for people reading a failed run; a failure here is not fatal.
            subprocess.run(
                [doveconf, "-n", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=START_TIMEOUT,
                check=False,
            )

    def _check_reachable_by_run_user(self) -> None:
        if os.geteuid() != 0:
            return
        # nobody must be able to walk down to the directory; a private TMPDIR (mode 700)
        # would otherwise fail later with a far less obvious error.
        for parent in self.dir.parents:
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(
                    f"{parent} is not searchable by {self._account.user}; "
                    "set TMPDIR to a world-searchable directory such as /tmp"
                )

    def _read_master_pid(self) -> int:
        pid_file = self.run_dir / "master.pid"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                return int(pid_file.read_text().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)
        raise RuntimeError(f"dovecot started but wrote no {pid_file}\n{self._log_tail()}")

    def _wait_for_ports(self) -> None:
        pending = {self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port}
        deadline = time.monotonic() + START_TIMEOUT
        while pending and time.monotonic() < deadline:
            if self._master_pid is None or not _alive(self._master_pid):
                raise RuntimeError(f"dovecot exited during start-up\n{self._log_tail()}")
            for port in sorted(pending):
                try:
                    with socket.create_connection((self.host, port), timeout=0.5):
                        pending.discard(port)
                except OSError:
                    pass
            if pending:
                time.sleep(0.02)
        if pending:
            raise RuntimeError(f"dovecot is not listening on {sorted(pending)}\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        parts = []
        for path in (self.stdio_log_path, self.log_path):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts)


class LoopbackProxy:
    """A TCP relay on loopback in front of `target_port`, for tests that break connections.

    Point a client at `proxy.port` instead of the server's port; then `cut()` drops every
    relayed connection (the client sees EOF, or a reset with `reset=True`) and `freeze()`
    makes the relay swallow all further data in both directions (the client sees a server
    that has stopped answering). New connections are relayed until `close()`.
    """

    def __init__(self, target_port: int, host: str = HOST) -> None:
        self.host = host
        self.target_port = target_port
        self._listener = socket.create_server((host, 0))
        # close() from another thread does not wake a blocked accept(): poll instead.
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._frozen = threading.Event()
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)]
        self._threads[0].start()

    def freeze(self) -> None:
        self._frozen.set()

    def cut(self, *, reset: bool = False) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream, stop in pairs:
            stop.set()
            for sock in (client, upstream):
                if reset:
                    # Linger 0: close() sends RST instead of FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            stop = threading.Event()
            with self._lock:
                self._pairs.append((client, upstream, stop))
            thread = threading.Thread(
                target=self._relay, args=(client, upstream, stop), name="proxy-relay", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _relay(self, client: socket.socket, upstream: socket.socket, stop: threading.Event) -> None:
        # One thread per connection; the short select timeout lets cut() stop it even when
        # it closed the sockets without a shutdown (reset=True).
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peer:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            while not stop.is_set():
                try:
                    ready = selector.select(0.05)
                    for key, _ in ready:
                        source = key.fileobj
                        assert isinstance(source, socket.socket)
                        data = source.recv(65536)
                        if not data:
                            # One side closed: close both, as a real path failure would.
                            stop.set()
                            break
                        if not self._frozen.is_set():
                            peer[source].setblocking(True)
                            peer[source].sendall(data)
                            peer[source].setblocking(False)
                except (OSError, ValueError):
                    break
        for sock in peer:
            with contextlib.suppress(OSError):
                sock.close()


def _alive(pid: int) -> bool:
    """Whether `pid` still runs. A zombie counts as gone: PID 1 in a container may never
    reap the daemonised master, and waiting for that took seconds per stop."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    # The state follows the command name, which is in parentheses and may contain spaces.
    return stat.rpartition(")")[2].split()[0] != "Z"


def _free_ports(count: int) -> list[int]:
    # All sockets are held open together so the ports are distinct; the kernel does not
    # hand them out again immediately, which is good enough for a test server.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _find_program(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN_DIRS])
    return shutil.which(name, path=path)


def _ensure_dovecot() -> str:
    binary = _find_program("dovecot")
    if binary is None and os.geteuid() == 0:
        _apt_install("dovecot-imapd", "dovecot-pop3d")
        binary = _find_program("dovecot")
    if binary is None:
        raise RuntimeError(
            "dovecot is not installed; install the Debian packages dovecot-imapd and "
            "dovecot-pop3d (apt-get install -y dovecot-imapd dovecot-pop3d)"
        )
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.strip()
    # 2.4 rewrote the configuration syntax; this config is written for 2.3.
    if not version.startswith("2.3."):
        raise RuntimeError(f"the test server needs Dovecot 2.3, found {version or 'unknown'}")
    return binary


def _apt_install(*packages: str) -> None:
    apt_get = _find_program("apt-get")
    if apt_get is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Output goes to a file, not a pipe: a package script that starts a daemon could keep
    # a pipe open and hang us. The lock timeout waits out another apt run instead of failing.
    with Path(tempfile.gettempdir(), "mailroom-dovecot-apt.log").open("ab") as log:
        for args in (["update"], ["-o", "DPkg::Lock::Timeout=300", "install", "-y", *packages]):
            subprocess.run(
                [apt_get, *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=900,
                check=False,
            )


def _write_tls(tls_dir: Path) -> None:
    """A throw-away CA (ca.pem, for clients) and a server certificate it signed for
    127.0.0.1 and localhost (cert.pem, key.pem, for Dovecot)."""
    now = datetime.now(UTC)
    validity = (now - timedelta(days=1), now + timedelta(days=30))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailroom test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        # Key identifiers make the chain acceptable to strict verifiers (VERIFY_X509_STRICT,
        # the default from Python 3.13 on).
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tls_dir / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (tls_dir / "cert.pem").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_path = tls_dir / "key.pem"
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_dh_params(tls_dir: Path) -> Path | None:
    """DH parameters for DHE ciphers (TLS 1.3/ECDHE clients do not need them).

    The fixed ffdhe2048 group is instant, unlike generating parameters; without openssl the
    setting is simply left out.
    """
    openssl = _find_program("openssl")
    if openssl is None:
        return None
    dh_file = tls_dir / "dh.pem"
    result = subprocess.run(
        [
            openssl,
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-out",
            str(dh_file),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return dh_file if result.returncode == 0 else None
