"""`appliance-vendor`: Sotto's own licence tool. Not shipped in the customer image (Dockerfile.cuda
removes it), and useless without the vendor's encrypted private key file."""

from __future__ import annotations

import base64
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.licensing.licence import ALGORITHM, ARMOR_BEGIN, ARMOR_END, DOMAIN, FEATURES, PRODUCT, SCHEMA, iso, unarmor, utcnow

app = typer.Typer(help="Sotto vendor licence tool (keep the private key offline).", no_args_is_help=True, add_completion=False)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(payload: dict[str, Any], key: Ed25519PrivateKey, kid: str) -> str:
    """An armored licence: base64 of {v, alg, kid, payload, sig}; the signature covers DOMAIN + payload bytes."""
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    envelope = {"v": 1, "alg": ALGORITHM, "kid": kid, "payload": _b64url(raw), "sig": _b64url(key.sign(DOMAIN + raw))}
    body = base64.b64encode(json.dumps(envelope).encode()).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


def load_key(path: Path, passphrase: str) -> Ed25519PrivateKey:
    if not path.is_file():
        raise typer.BadParameter(f"no private key file at {path}: this tool only runs where the vendor key is")
    key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase.encode())
    if not isinstance(key, Ed25519PrivateKey):
        raise typer.BadParameter("the key file is not an Ed25519 key")
    return key


def _passphrase(stdin: bool) -> str:
    return sys.stdin.readline().rstrip("\n") if stdin else typer.prompt("Key passphrase", hide_input=True)


KeyOption = Annotated[Path, typer.Option("--key", help="The vendor's encrypted private key (PEM).")]
KidOption = Annotated[str, typer.Option("--kid", help="The key id the appliance knows this key by.")]
StdinOption = Annotated[bool, typer.Option("--passphrase-stdin", help="Read the key passphrase from standard input.")]


@app.command()
def keygen(out: Annotated[Path, typer.Option("--out")], kid: KidOption, passphrase_stdin: StdinOption = False) -> None:
    """Make a new signing key (encrypted PKCS#8); print its id and public key for the trust map."""
    if out.exists():
        raise typer.BadParameter(f"{out} exists; refusing to overwrite a key")
    passphrase = _passphrase(passphrase_stdin)
    if len(passphrase) < 12:
        raise typer.BadParameter("use a passphrase of at least 12 characters")
    key = Ed25519PrivateKey.generate()
    out.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    out.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    typer.echo(json.dumps({"kid": kid, "public_key": base64.b64encode(public).decode()}))


def _ledger_check(ledger: Path, license_key: str, machine: str, seats: int) -> None:
    data = json.loads(ledger.read_text()) if ledger.exists() else {}
    entry = data.setdefault(license_key, {"seats": seats, "machines": []})
    entry["seats"] = seats
    if machine not in entry["machines"]:
        if len(entry["machines"]) >= seats:
            raise typer.BadParameter(f"licence key {license_key} already has {seats} activation(s); refusing another machine")
        entry["machines"].append(machine)
    ledger.write_text(json.dumps(data, indent=2))


@app.command()
def issue(
    request: Annotated[Path, typer.Option("--request", help="The customer's activation-request.json.")],
    key: KeyOption,
    kid: KidOption,
    customer: Annotated[str, typer.Option()],
    out: Annotated[Path, typer.Option("--out")],
    ledger: Annotated[Path, typer.Option("--ledger", help="Activations per licence key (JSON).")],
    seats: Annotated[int, typer.Option(help="Machines this licence key may activate.")] = 1,
    days: Annotated[int, typer.Option(help="Days of validity from now.")] = 365,
    grace_days: Annotated[int, typer.Option()] = 14,
    serial: Annotated[int, typer.Option(help="Must grow with every file issued for the same licence.")] = 1,
    features: Annotated[
        str, typer.Option(help=f"Comma-separated: {', '.join(FEATURES)}.")
    ] = "diarization,api,private_transcripts",
    limits: Annotated[str, typer.Option(help="e.g. max_gpus=2,max_concurrent_jobs=8,max_users=50")] = "",
    min_gpu_match: Annotated[int, typer.Option(help="GPUs that must still match (one may be swapped under RMA).")] = 0,
    passphrase_stdin: StdinOption = False,
) -> None:
    """Issue a licence for an activation request."""
    req = json.loads(request.read_text())
    if req.get("product") != PRODUCT:
        raise typer.BadParameter("the request is not for this product")
    fp = req["fingerprint"]
    _ledger_check(ledger, req["license_key"], fp["machine"], seats)
    private = load_key(key, _passphrase(passphrase_stdin))
    now = utcnow()
    gpus = list(fp.get("gpus") or [])
    payload = {
        "product": PRODUCT,
        "schema": SCHEMA,
        "license_id": req["license_key"],
        "serial": serial,
        "customer": customer,
        "features": [f for f in features.split(",") if f],
        "limits": _limits(limits),
        "issued_at": iso(now),
        "not_before": iso(now),
        "expires_at": iso(now + timedelta(days=days)),
        "grace_days": grace_days,
        "nonce": req["nonce"],
        "binding": {
            "machine": fp["machine"],
            "gpus": gpus,
            "min_gpu_match": min_gpu_match or max(1, len(gpus) - 1) if gpus else 0,
        },
    }
    out.write_text(sign(payload, private, kid))
    typer.echo(f"wrote {out} for {customer}, expires {payload['expires_at']}")


def _limits(text: str) -> dict[str, int]:
    result = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        result[name.strip()] = int(value)
    return result


def _payload(text: str) -> dict[str, Any]:
    envelope = unarmor(text)
    raw = base64.urlsafe_b64decode(envelope["payload"] + "=" * (-len(envelope["payload"]) % 4))
    return {"kid": envelope["kid"], **json.loads(raw)}


@app.command()
def renew(
    license_file: Annotated[Path, typer.Option("--license", help="The licence to renew.")],
    key: KeyOption,
    kid: KidOption,
    out: Annotated[Path, typer.Option("--out")],
    days: Annotated[int, typer.Option(help="Days of validity from the old expiry (or now, if later).")] = 365,
    passphrase_stdin: StdinOption = False,
) -> None:
    """A newer licence for the same machine and request: later expiry, higher serial."""
    payload = _payload(license_file.read_text())
    payload.pop("kid")
    private = load_key(key, _passphrase(passphrase_stdin))
    from appliance.licensing.licence import parse_time

    start = max(utcnow(), parse_time(payload["expires_at"], "expires_at"))
    payload.update(serial=payload["serial"] + 1, issued_at=iso(utcnow()), expires_at=iso(start + timedelta(days=days)))
    out.write_text(sign(payload, private, kid))
    typer.echo(f"wrote {out}, serial {payload['serial']}, expires {payload['expires_at']}")


@app.command()
def inspect(license_file: Annotated[Path, typer.Argument()]) -> None:
    """Show what a licence file says (no signature check: use `appliance license install` for that)."""
    typer.echo(json.dumps(_payload(license_file.read_text()), indent=2))


if __name__ == "__main__":  # pragma: no cover
    app()
