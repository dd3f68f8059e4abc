"""The HTTP client layer of the web backends (s3, webdav, http).

    from pyclone_docker.lib.httpclient import HttpClient, HttpError, BodyReader

    client = HttpClient(ctx, "s3 'bucket' at http://127.0.0.1:9000", max_connections=10)
    resp = client.request("GET", url, headers={...}, prepare=sign, stream=True, direction="download")
    with BodyReader(client, resp) as body:
        n = body.readinto(view)

client.py: HttpClient (retries, headers, limits, dumps) and BodyReader; tls.py: --ca-cert,
--client-cert/--client-key, --no-check-certificate; proxy.py: HTTP(S)_PROXY and NO_PROXY;
retry.py: backoff and Retry-After; dump.py: --dump with redaction; limits.py: the process-wide
--tpslimit and --bwlimit buckets; ranged.py: RangedReader, a file read by ranged GETs and resumed;
redirects.py: how redirects are followed.
urllib3 is loaded with the first HttpClient.
"""

from __future__ import annotations

from .client import BodyReader, HttpClient, HttpError, merge_headers
from .retry import RETRY_STATUSES

__all__ = ["RETRY_STATUSES", "BodyReader", "HttpClient", "HttpError", "merge_headers"]
