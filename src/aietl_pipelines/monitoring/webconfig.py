"""TLS and basic auth for the metrics stack, with no password committed anywhere.

``deploy/prometheus/web.yml`` is the web config of Prometheus and the Pushgateway (``--web.config.file``): TLS
on, basic auth for one user whose bcrypt hash is a placeholder that matches no password. `make metrics-secrets`
(``python -m aietl_pipelines.monitoring.webconfig``) writes the files docker-compose mounts into
``deploy/secrets/`` (git-ignored):

- ``web.yml``: the committed web config with the hash of ``$PROMETHEUS_WEB_PASSWORD`` (required);
- ``tls/tls.crt`` / ``tls/tls.key``: a self-signed certificate for the compose host names (replace it with one from
  your CA in production; Prometheus and Grafana trust ``tls.crt`` as the CA);
- ``web_password``: the password Prometheus and Grafana use towards the Pushgateway and Prometheus;
- ``api_key``: the first key of ``$AIETL_API_KEYS``, the bearer token Prometheus scrapes the API's /metrics with.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
WEB_CONFIG_TEMPLATE = ROOT / "deploy" / "prometheus" / "web.yml"
COMPOSE_HOSTS = ("localhost", "127.0.0.1", "api", "prometheus", "pushgateway", "alertmanager", "grafana")


def hash_password(password: str) -> str:
    """The bcrypt hash Prometheus's web config expects."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def render_web_config(password: str, cert_file: str | None = None, key_file: str | None = None,
                      template: Path = WEB_CONFIG_TEMPLATE) -> str:
    """The committed web config with every user's hash set to `password`'s (and other TLS paths if given)."""
    if not password:
        raise ValueError("An empty password: set PROMETHEUS_WEB_PASSWORD to a secret of your own.")
    config = yaml.safe_load(template.read_text())
    hashed = hash_password(password)
    config["basic_auth_users"] = {user: hashed for user in config["basic_auth_users"]}
    if cert_file:
        config["tls_server_config"]["cert_file"] = str(cert_file)
    if key_file:
        config["tls_server_config"]["key_file"] = str(key_file)
    return yaml.safe_dump(config, sort_keys=False)


def web_user(template: Path = WEB_CONFIG_TEMPLATE) -> str:
    """The basic-auth user name of the committed web config."""
    return next(iter(yaml.safe_load(template.read_text())["basic_auth_users"]))


def make_self_signed_cert(directory: Path, hosts: Sequence[str] = COMPOSE_HOSTS,
                          days: int = 365) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) valid for `hosts` (names or IPs): (tls.crt, tls.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o644)  # read by the containers' non-root users; the directory is git-ignored
    return cert_path, key_path


def main(argv: Sequence[str] | None = None) -> int:
    """Write deploy/secrets/ for docker-compose (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(ROOT / "deploy" / "secrets"))
    parser.add_argument("--hosts", default=",".join(COMPOSE_HOSTS), help="certificate host names / IPs")
    args = parser.parse_args(argv)
    password = os.environ.get("PROMETHEUS_WEB_PASSWORD", "")
    keys = [k.strip() for k in os.environ.get("AIETL_API_KEYS", "").split(",") if k.strip()]
    if not password or not keys:
        print("Set PROMETHEUS_WEB_PASSWORD and AIETL_API_KEYS (e.g. in .env, then `set -a; . ./.env`) "
              "before `make metrics-secrets`.", file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    cert, key = make_self_signed_cert(out / "tls", [h.strip() for h in args.hosts.split(",") if h.strip()])
    (out / "web.yml").write_text(render_web_config(password))
    (out / "web_password").write_text(password)
    (out / "api_key").write_text(keys[0])
    for secret in ("web_password", "api_key"):
        (out / secret).chmod(0o644)  # read by Prometheus's non-root user in its container
    print(f"wrote tls/{cert.name}, tls/{key.name}, web.yml, web_password, api_key to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
