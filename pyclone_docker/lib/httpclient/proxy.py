"""HTTP(S)_PROXY and NO_PROXY, read as Go's net/http ProxyFromEnvironment (which rclone uses).

- https URLs use HTTPS_PROXY (or https_proxy), http URLs HTTP_PROXY (or http_proxy): the upper
  case name wins when both are set; an empty value counts as unset. With REQUEST_METHOD set
  (a CGI program) HTTP_PROXY is ignored, as Go does.
- A proxy without a scheme is `http://`; http and https proxies work (urllib3's ProxyManager:
  an http:// URL is forwarded, an https:// URL goes through a CONNECT tunnel). socks5 proxies,
  which Go also takes, are refused with a clear error: no SOCKS support without extra packages.
- "localhost" and loopback addresses are never proxied.
- NO_PROXY (or no_proxy): comma separated; `*` turns proxying off; an IP or CIDR matches those
  addresses; `example.com` matches it and its subdomains, `.example.com` and `*.example.com`
  the subdomains only; each may carry a `:port`.

The user name and password of a proxy URL go into a Proxy-Authorization header; `redact_proxy`
gives the URL without them, for logs and errors.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True)
class Proxy:
    url: str  # scheme://host:port, no credentials
    headers: tuple[tuple[str, str], ...] = ()  # Proxy-Authorization when the URL had a user

    def __repr__(self) -> str:  # never the credentials
        return f"Proxy({self.url!r})"


def _env(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = env.get(name, "")
        if value:
            return value
    return ""


def redact_proxy(raw: str) -> str:
    """A proxy URL fit for a log line: no user name or password."""
    try:
        parts = urlsplit(raw if "://" in raw else "http://" + raw)
        host = parts.hostname or ""
    except ValueError:
        return "<unparsable proxy URL>"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def parse_proxy(raw: str) -> Proxy:
    """A proxy setting as Go reads it (no scheme means http://)."""
    parts = urlsplit(raw)
    if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
        parts = urlsplit("http://" + raw)
    if parts.scheme in ("socks5", "socks5h"):
        raise ValueError(f"proxy {redact_proxy(raw)}: SOCKS5 proxies are not supported for HTTP backends")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host:
        raise ValueError(f"invalid proxy address {redact_proxy(raw)}")
    shown = f"[{host}]" if ":" in host else host
    url = f"{parts.scheme}://{shown}:{port or DEFAULT_PORTS[parts.scheme]}"
    headers: tuple[tuple[str, str], ...] = ()
    if parts.username is not None:
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers = (("Proxy-Authorization", "Basic " + base64.b64encode(cred).decode("ascii")),)
    return Proxy(url, headers)


def _no_proxy_match(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY exempts host:port (host lower case, no brackets)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        try:
            if ip is not None and ip == ipaddress.ip_address(entry.strip("[]")):
                return True
            ipaddress.ip_address(entry.strip("[]"))
            continue  # an IP entry that is not this host
        except ValueError:
            pass
        entry_host, entry_port = entry, 0
        if entry.startswith("["):  # [v6]:port
            close = entry.find("]")
            entry_host, rest = entry[1:close], entry[close + 1:]
            if rest.startswith(":") and rest[1:].isdigit():
                entry_port = int(rest[1:])
            if ip is not None and ip == _ip_or_none(entry_host) and entry_port in (0, port):
                return True
            continue
        head, colon, tail = entry.rpartition(":")
        if colon and tail.isdigit():
            entry_host, entry_port = head, int(tail)
        if entry_port and entry_port != port:
            continue
        if ip is not None and _ip_or_none(entry_host) == ip:
            return True
        if entry_host.startswith("*."):
            entry_host = entry_host[1:]
        if entry_host.startswith("."):
            if host.endswith(entry_host):
                return True
        elif host == entry_host or host.endswith("." + entry_host):
            return True
    return False


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def proxy_for(url: str, env: Mapping[str, str]) -> Proxy | None:
    """The proxy `url` goes through, from the environment `env`, or None for a direct connection.
    ValueError for a proxy setting that cannot be used (its credentials never in the message)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        raw = _env(env, "HTTPS_PROXY", "https_proxy")
    elif scheme == "http":
        raw = "" if env.get("REQUEST_METHOD") else _env(env, "HTTP_PROXY", "http_proxy")
    else:
        return None
    if not raw:
        return None
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        port = DEFAULT_PORTS[scheme]
    if host == "localhost":
        return None
    ip = _ip_or_none(host)
    if ip is not None and ip.is_loopback:
        return None
    if _no_proxy_match(host, port, _env(env, "NO_PROXY", "no_proxy")):
        return None
    return parse_proxy(raw)
