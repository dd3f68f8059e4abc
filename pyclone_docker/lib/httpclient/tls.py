"""The TLS context of an HttpClient, from rclone's flags (fs/fshttp/http.go does the same):

- --ca-cert FILE (repeatable): the certificates of these PEM files are the roots servers are
  verified against, INSTEAD of the system's (rclone sets RootCAs to a pool of just these).
  Without it the system's default roots (and SSL_CERT_FILE / SSL_CERT_DIR) are used.
- --client-cert and --client-key: a client certificate for mutual TLS; one without the other is
  an error naming both flags, as rclone's. Encrypted keys are refused (rclone's --client-pass is
  not implemented): they are never asked for on a terminal.
- --no-check-certificate: neither the chain nor the host name is checked (insecure).

Errors are ValueError in rclone's words, naming the flag and the file, raised when the
HttpClient is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl


def _no_password() -> bytes:
    raise ValueError("the key is encrypted (rclone's --client-pass is not supported)")


def ssl_context(ctx: Any) -> ssl.SSLContext:
    """An SSLContext for the settings of `ctx` (a BackendContext, or anything with its fields)."""
    import ssl

    ca_files = tuple(getattr(ctx, "ca_cert", ()) or ())
    client_cert = getattr(ctx, "client_cert", "") or ""
    client_key = getattr(ctx, "client_key", "") or ""
    insecure = bool(getattr(ctx, "no_check_certificate", False))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED set
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Go's client default
    if ca_files:
        for path in ca_files:
            try:
                with open(path, "rb") as f:
                    pem = f.read()
            except OSError as e:
                raise ValueError(f"Failed to read --ca-cert file {path!r} : {e.strerror or e}") from None
            try:
                context.load_verify_locations(cadata=pem.decode("ascii", "replace"))
            except (ssl.SSLError, ValueError):
                raise ValueError(f"Failed to add certificates from --ca-cert file {path!r}") from None
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if client_cert or client_key:
        if not (client_cert and client_key):
            raise ValueError("Both --client-cert and --client-key must be set")
        try:
            context.load_cert_chain(client_cert, client_key, password=_no_password)
        except (OSError, ssl.SSLError, ValueError) as e:
            why = e.strerror if isinstance(e, OSError) and not isinstance(e, ssl.SSLError) and e.strerror else e
            raise ValueError(f"Failed to load --client-cert/--client-key pair ({client_cert!r}, {client_key!r}): "
                             f"{why}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
