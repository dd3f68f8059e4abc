"""Names from a directory's index page, as rclone's http backend finds them: every <a href>,
resolved against the page's URL, kept when it stays on the same scheme and host, has no query,
lies directly below the page (one level; a trailing / marks a directory) and was not seen
before. The page is fed in pieces to html.parser: a big index is never held whole.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            for key, value in attrs:
                if key == "href":
                    if value is not None:
                        self.hrefs.append(value)
                    break


def name_of(base: str, href: str) -> str | None:
    """The name (a directory's with its trailing /) `href` gives below `base`, or None (rclone's parseName)."""
    u = urljoin(base, href)
    if "?" in u:
        return None
    b, p = urlsplit(base), urlsplit(u)
    if (b.scheme, b.netloc) != (p.scheme, p.netloc):
        return None
    base_path, path = unquote(b.path), unquote(p.path)
    if not path.startswith(base_path):
        return None
    name = path[len(base_path):]
    if not name:
        return None
    slash = name.find("/")
    if slash >= 0 and slash != len(name) - 1:
        return None
    return name


def names(base: str, read: Callable[[memoryview], int], piece: int = 64 * 1024) -> Iterator[str]:
    """The names of the index page read with `read(view) -> n` (0 at the end), each once."""
    parser = _Links()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character cut between pieces waits
    seen: set[str] = set()
    buf = bytearray(piece)
    view = memoryview(buf)
    while True:
        n = read(view)
        parser.feed(decoder.decode(view[:n], final=not n))
        if not n:
            parser.close()
        for href in parser.hrefs:
            name = name_of(base, href)
            if name is not None and name not in seen:
                seen.add(name)
                yield name
        parser.hrefs.clear()
        if not n:
            return
