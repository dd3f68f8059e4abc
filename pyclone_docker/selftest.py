"""`selftest`: known-answer tests of the native crypto this build carries.

Run on every architecture's zipapp (and under qemu for the ARM builds): a wrong word
size or a broken cross-compiled module shows up here, not as garbage on a remote.
The vectors were produced by real rclone (obscure, crypt's secretbox blocks).
"""

from __future__ import annotations

import time

PASSWORD = "correct horse battery staple"
DATA_KEY = "7c88752cf3db1a2ea4835274f5dee9a3c01f8ca0d78fb307c824e364941ff47b"
NAME_KEY = "c017a5d73b8a13da3257bf928cd74c5e801e9989c3b7a0c373298a9b275a307b"
NAME_TWEAK = "bfd82eaeea770b00f282a312d8a8c4c7"
DEFAULT_SALT = bytes.fromhex("a80df43a8fbd0308a7cab83e581f86b1")
BOX_NONCE = bytes(range(24))
BOX_PLAIN = b"The quick brown fox\n"
BOX_SEALED = "3948ce90cff6dfd8e98d39edb09ed59922f037d7d3b2f49003ccc5026aa63599b0aab860"


def _check(name: str, got: str, want: str) -> tuple[str, bool]:
    return name, got == want


def run() -> list[tuple[str, bool]]:
    from Cryptodome.Protocol.KDF import scrypt

    from . import obscure, secretbox

    results = [
        _check("obscure/reveal (AES-256-CTR)", obscure.reveal("YWFhYWFhYWFhYWFhYWFhYXMaGgIlEQ"), "potato"),
        _check("obscure round trip", obscure.reveal(obscure.obscure("pässwörd")), "pässwörd"),
    ]
    key = scrypt(PASSWORD.encode(), DEFAULT_SALT, 80, N=16384, r=8, p=1)
    results.append(_check("scrypt (crypt key derivation)", key.hex(), DATA_KEY + NAME_KEY + NAME_TWEAK))
    sealed = secretbox.seal(BOX_PLAIN, BOX_NONCE, bytes.fromhex(DATA_KEY))
    results.append(_check("XSalsa20-Poly1305 seal", sealed.hex(), BOX_SEALED))
    opened = secretbox.open_(bytes.fromhex(BOX_SEALED), BOX_NONCE, bytes.fromhex(DATA_KEY))
    results.append(_check("XSalsa20-Poly1305 open", opened.hex(), BOX_PLAIN.hex()))
    try:
        secretbox.open_(bytes.fromhex(BOX_SEALED)[:-1] + b"\0", BOX_NONCE, bytes.fromhex(DATA_KEY))
        results.append(("Poly1305 rejects a forged box", False))
    except ValueError:
        results.append(("Poly1305 rejects a forged box", True))
    return results


def main() -> int:
    started = time.monotonic()
    results = run()
    for name, ok in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    failed = sum(not ok for _, ok in results)
    print(f"{len(results) - failed} passed, {failed} failed ({time.monotonic() - started:.2f}s)")
    return 1 if failed else 0
