"""Flower's Deployment Engine on loopback, for tests: a SuperLink and SuperNodes as processes.

`DeploymentSuperLink` starts `flower-superlink` without simulation, serving its Fleet, Control
and Runtime APIs on one HTTP port, and one `flower-supernode` per partition with
`--node-config "partition-id=<i> num-partitions=<n>"`, each under its own FLWR_HOME with free
ports. The `flwr` CLI gets a default connection named `deployment`, so `run()` and friends of
`LocalSuperLink` work unchanged. With `TlsFiles` every API is served over TLS; with
`supernode_auth` as well, the SuperLink only admits SuperNodes whose public keys were registered
with `flwr supernode register`.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .flower import BIN_DIR, LocalSuperLink, free_port, stop_process_tree, toml_value, wait_until_healthy

CONNECTION = "deployment"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: a CA certificate, and a server certificate and key that the CA signed."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flowertune test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(server_names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.crt", directory / "server.pem", directory / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return files


def make_supernode_key(private_key: Path) -> Path:
    """A P-384 key pair for SuperNode authentication (OpenSSH format); returns the public key."""
    private_key.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ))
    public_key = private_key.with_name(private_key.name + ".pub")
    public_key.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ))
    return public_key


class DeploymentSuperLink(LocalSuperLink):
    """A SuperLink on the Deployment Engine with `num_supernodes` SuperNodes, all on loopback."""

    def __init__(
        self, home: Path, num_supernodes: int = 2, tls: TlsFiles | None = None, supernode_auth: bool = False
    ) -> None:
        if supernode_auth and tls is None:
            raise ValueError("SuperNode authentication needs TLS")
        super().__init__(home, num_supernodes)
        self.tls = tls
        self.supernode_auth = supernode_auth
        self.supernodes: list[subprocess.Popen] = []

    @property
    def address(self) -> str:
        """The SuperLink's one HTTP address (Fleet, Control and Runtime APIs)."""
        return f"127.0.0.1:{self.http_port}"

    def process_env(self, flwr_home: Path) -> dict[str, str]:
        """The `flwr` environment, but with a FLWR_HOME of the process's own."""
        return {**self.env, "FLWR_HOME": str(flwr_home)}

    def connection_toml(self) -> str:
        """The CLI's Flower config: a default connection to this SuperLink."""
        security = f"root-certificates = {toml_value(self.tls.ca_cert)}" if self.tls else "insecure = true"
        return (
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f'[superlink.{CONNECTION}]\naddress = "{self.address}"\n{security}\n'
        )

    def start(self, cwd: Path, timeout: float = 60.0) -> None:
        """Start the SuperLink, register the SuperNodes' keys if needed, start the SuperNodes."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "config.toml").write_text(self.connection_toml(), encoding="utf-8")
        superlink_home = self.home / "superlink"
        superlink_home.mkdir(exist_ok=True)
        command = [
            str(BIN_DIR / "flower-superlink"), *self.superlink_security_args(),
            "--host", "127.0.0.1", "--port", str(self.http_port),
            "--database", str(superlink_home / "state.db"),
            "--log-file", str(superlink_home / "superlink.log"),
        ]
        self.process = subprocess.Popen(
            command, cwd=cwd, env=self.process_env(superlink_home), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        health_url = f"{'https' if self.tls else 'http'}://{self.address}/health"
        verify = ssl.create_default_context(cafile=self.tls.ca_cert) if self.tls else True
        try:
            wait_until_healthy(self.process, health_url, timeout, verify)
            for partition_id in range(self.num_supernodes):
                name = f"supernode-{partition_id}"
                private_key = None
                if self.supernode_auth:
                    private_key = self.home / "keys" / name
                    self.register_supernode(make_supernode_key(private_key))
                self.start_supernode(name, partition_id, private_key)
            self.wait_for_online_supernodes(self.num_supernodes, timeout)
        except (RuntimeError, subprocess.CalledProcessError):
            self.stop()
            raise

    def superlink_security_args(self) -> list[str]:
        """TLS certificates (and SuperNode authentication), or `--insecure`."""
        if self.tls is None:
            return ["--insecure"]
        args = [
            "--ssl-certfile", str(self.tls.server_cert),
            "--ssl-keyfile", str(self.tls.server_key),
            "--ssl-ca-certfile", str(self.tls.ca_cert),
        ]
        return args + ["--enable-supernode-auth"] if self.supernode_auth else args

    def register_supernode(self, public_key: Path) -> None:
        """Admit the SuperNode holding the matching private key (`flwr supernode register`)."""
        subprocess.run(
            [str(BIN_DIR / "flwr"), "supernode", "register", str(public_key), CONNECTION],
            env=self.env, capture_output=True, text=True, timeout=60, check=True,
        )

    def start_supernode(
        self, name: str, partition_id: int, private_key: Path | None = None, max_retries: int | None = None
    ) -> subprocess.Popen:
        """Start a SuperNode for one partition; it runs ClientApps in subprocesses."""
        flwr_home = self.home / name
        flwr_home.mkdir(parents=True, exist_ok=True)
        command = [
            str(BIN_DIR / "flower-supernode"),
            *(["--root-certificates", str(self.tls.ca_cert)] if self.tls else ["--insecure"]),
            "--superlink", self.address,
            "--host", "127.0.0.1", "--port", str(free_port()),
            "--node-config", f"partition-id={partition_id} num-partitions={self.num_supernodes}",
        ]
        if private_key is not None:
            command += ["--auth-supernode-private-key", str(private_key)]
        if max_retries is not None:
            command += ["--max-retries", str(max_retries)]
        with self.supernode_log(name).open("w", encoding="utf-8") as log:
            process = subprocess.Popen(
                command, cwd=flwr_home, env=self.process_env(flwr_home), start_new_session=True,
                stdout=log, stderr=subprocess.STDOUT,
            )
        self.supernodes.append(process)
        return process

    def supernode_log(self, name: str) -> Path:
        """Where the SuperNode `name` writes its output."""
        return self.home / name / "supernode.log"

    def online_supernodes(self) -> int:
        """How many SuperNodes the SuperLink sees online (`flwr supernode ls`)."""
        completed = subprocess.run(
            [str(BIN_DIR / "flwr"), "supernode", "ls", CONNECTION, "--format", "json"],
            env=self.env, capture_output=True, text=True, timeout=60,
        )
        nodes = json.loads(completed.stdout).get("nodes", [])
        return sum(node["status"] == "online" for node in nodes)

    def wait_for_online_supernodes(self, count: int, timeout: float) -> None:
        """Wait until `count` SuperNodes are online."""
        deadline = time.monotonic() + timeout
        while self.online_supernodes() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} SuperNodes came online within {timeout:.0f}s")
            time.sleep(1)

    def stop(self) -> None:
        """Stop the SuperNodes, then the SuperLink, each with what it started, by their pids."""
        stop_process_tree([process.pid for process in self.supernodes])
        for process in self.supernodes:
            process.wait()
        self.supernodes.clear()
        super().stop()
